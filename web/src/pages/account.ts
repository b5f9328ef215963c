// Pages for getting in: login, first-run setup (needs the one-time setup code) and joining by
// invitation. Each ends with a session cookie set by the gateway.
import { api, ApiError, nextPath } from '../api';
import { field, formValues, h, message } from '../dom';

function form(
  title: string,
  intro: (Node | string)[],
  fields: HTMLElement[],
  submit: string,
  onsubmit: (values: Record<string, string>) => Promise<void>,
): HTMLElement {
  const status = h('div', { 'aria-live': 'polite' });
  const button = h('button', { type: 'submit' }, submit);
  const el = h('form', { class: 'card', novalidate: false }, h('h1', {}, title), ...intro.map((p) => h('p', {}, p)), ...fields, status, button);
  el.addEventListener('submit', async (e) => {
    e.preventDefault();
    button.disabled = true;
    status.replaceChildren();
    try {
      await onsubmit(formValues(el));
    } catch (err) {
      status.replaceChildren(message('error', err instanceof ApiError ? err.message : String(err)));
    } finally {
      button.disabled = false;
    }
  });
  return el;
}

function passwords(): HTMLElement[] {
  return [
    field('Password', { name: 'password', type: 'password', autocomplete: 'new-password', required: true, minlength: 8 }),
    field('Repeat password', { name: 'password2', type: 'password', autocomplete: 'new-password', required: true }),
  ];
}

function checkPasswords(v: Record<string, string>) {
  if (v.password !== v.password2) throw new Error('The passwords differ.');
}

export function loginPage(main: HTMLElement) {
  main.replaceChildren(
    form(
      'Log in',
      [],
      [
        field('Username', { name: 'username', autocomplete: 'username', required: true, autofocus: true }),
        field('Password', { name: 'password', type: 'password', autocomplete: 'current-password', required: true }),
      ],
      'Log in',
      async (v) => {
        await api('POST', '/api/auth/login', { username: v.username, password: v.password });
        location.href = nextPath();
      },
    ),
  );
  main.querySelector('input')?.focus();
}

export async function setupPage(main: HTMLElement) {
  const { needs_setup } = await api<{ needs_setup: boolean }>('GET', '/api/setup/status');
  if (!needs_setup) {
    main.replaceChildren(h('h1', {}, 'Already set up'), h('p', {}, 'This instance has its first user. ', h('a', { href: '/login' }, 'Log in')));
    return;
  }
  main.replaceChildren(
    form(
      'Set up Phirepass',
      [
        h('span', {}, 'Create the first administrator. You need the one-time setup code printed on the console of ', h('code', {}, 'phirepass dev'), ' (or of the authz service) when it started.'),
      ],
      [
        field('Setup code', { name: 'code', required: true, autocomplete: 'off', autofocus: true, spellcheck: 'false' }),
        field('Admin username', { name: 'username', autocomplete: 'username', required: true }),
        ...passwords(),
      ],
      'Create administrator',
      async (v) => {
        checkPasswords(v);
        await api('POST', '/api/setup', { code: v.code.trim(), username: v.username, password: v.password });
        location.href = '/admin';
      },
    ),
  );
  main.querySelector('input')?.focus();
}

interface Invitation {
  username: string;
  admin: boolean;
  expires_at: number;
  created_by: string;
}

export async function joinPage(main: HTMLElement) {
  const code = decodeURIComponent(location.pathname.slice('/join/'.length));
  let invitation: Invitation;
  try {
    invitation = await api<Invitation>('POST', '/api/join/inspect', { code });
  } catch (e) {
    main.replaceChildren(
      h('h1', {}, 'Invitation not usable'),
      message('error', e instanceof ApiError ? e.message : String(e)),
      h('p', {}, 'Ask an administrator for a new invitation.'),
    );
    return;
  }
  const fixed = invitation.username !== '';
  main.replaceChildren(
    form(
      'Join Phirepass',
      [`You were invited${invitation.created_by ? ' by ' + invitation.created_by : ''}${invitation.admin ? ' as an administrator' : ''}. The invitation expires ${new Date(invitation.expires_at).toLocaleString()}.`],
      [
        field('Username', { name: 'username', autocomplete: 'username', required: true, value: invitation.username, readonly: fixed }),
        ...passwords(),
      ],
      'Create account',
      async (v) => {
        checkPasswords(v);
        await api('POST', '/api/join', { code, username: v.username, password: v.password });
        location.href = '/';
      },
    ),
  );
  (main.querySelector(fixed ? 'input[name=password]' : 'input') as HTMLInputElement | null)?.focus();
}
