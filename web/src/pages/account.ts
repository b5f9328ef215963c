// Pages for getting in: login, first-run setup (needs the one-time setup code) and joining by
// invitation. Each ends with a session cookie set by the gateway.
import { api, ApiError, nextPath } from '../api';
import { h, message } from '../dom';
import { checkedForm, FieldSpec, passwordRule, repeatRule, required, usernameRule } from '../form';

function passwords(): FieldSpec[] {
  return [
    { name: 'password', label: 'Password', attrs: { type: 'password', autocomplete: 'new-password' }, check: passwordRule },
    { name: 'password2', label: 'Repeat password', attrs: { type: 'password', autocomplete: 'new-password' }, check: repeatRule },
  ];
}

/// Which field a refusal from the server is about.
function fieldOf(error: string): string | null {
  if (/setup code/i.test(error)) return 'code';
  if (/username|user .*exists|name .*taken/i.test(error)) return 'username';
  if (/password/i.test(error)) return 'password';
  return null;
}

export function loginPage(main: HTMLElement) {
  main.replaceChildren(
    checkedForm({
      title: 'Log in',
      intro: [],
      fields: [
        { name: 'username', label: 'Username', attrs: { autocomplete: 'username', autofocus: true }, check: required('your username') },
        { name: 'password', label: 'Password', attrs: { type: 'password', autocomplete: 'current-password' }, check: required('your password') },
      ],
      submit: 'Log in',
      onsubmit: async (v) => {
        await api('POST', '/api/auth/login', { username: v.username.trim(), password: v.password });
        location.href = nextPath();
      },
    }),
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
    checkedForm({
      title: 'Set up Phirepass',
      intro: [
        h('span', {}, 'Create the first administrator. You need the one-time setup code printed on the console of ', h('code', {}, 'phirepass dev'), ' (or of the authz service) when it last started: each start prints a new one.'),
      ],
      fields: [
        { name: 'code', label: 'Setup code', attrs: { autocomplete: 'off', autofocus: true, spellcheck: 'false' }, check: required('the setup code') },
        { name: 'username', label: 'Admin username', attrs: { autocomplete: 'username' }, check: usernameRule },
        ...passwords(),
      ],
      submit: 'Create administrator',
      onsubmit: async (v) => {
        await api('POST', '/api/setup', { code: v.code.trim(), username: v.username.trim(), password: v.password });
        location.href = '/admin';
      },
      fieldOf,
    }),
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
    checkedForm({
      title: 'Join Phirepass',
      intro: [`You were invited${invitation.created_by ? ' by ' + invitation.created_by : ''}${invitation.admin ? ' as an administrator' : ''}. The invitation expires ${new Date(invitation.expires_at).toLocaleString()}.`],
      fields: [
        { name: 'username', label: 'Username', attrs: { autocomplete: 'username', value: invitation.username, readonly: fixed }, check: usernameRule },
        ...passwords(),
      ],
      submit: 'Create account',
      onsubmit: async (v) => {
        await api('POST', '/api/join', { code, username: v.username.trim(), password: v.password });
        location.href = '/';
      },
      fieldOf,
    }),
  );
  (main.querySelector(fixed ? 'input[name=password]' : 'input') as HTMLInputElement | null)?.focus();
}
