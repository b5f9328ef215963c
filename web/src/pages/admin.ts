// `/admin`: live nodes and sessions (with kick), users and groups, invitations.
import { api, ApiError, Me } from '../api';
import { ago, bytes, field, formValues, h, message, when } from '../dom';
import { Stats, statsCells } from './nodes';

interface AdminNode {
  node_id: string;
  name: string;
  owner: string;
  gateway_id: string;
  connected_at: number;
  last_heartbeat: number;
  stats: Stats | null;
}
interface Session {
  session_id: string;
  username: string;
  target_name: string;
  edge_kind: string;
  client_ip: string;
  gateway_id: string;
  started_at: number;
  bytes_in: number;
  bytes_out: number;
}
interface User {
  username: string;
  admin: boolean;
  disabled: boolean;
  created_at: number;
}
interface Group {
  name: string;
  members: string[];
}
interface Invitation {
  id: string;
  username: string;
  admin: boolean;
  created_by: string;
  created_at: number;
  expires_at: number;
  state: string;
  used_by: string | null;
}

const LIVE_MS = 1000;

function table(label: string, testid: string, heads: string[], body: HTMLElement) {
  return h(
    'div',
    { class: 'table-wrap' },
    h('table', { 'data-testid': testid }, h('caption', { class: 'sr-only' }, label), h('thead', {}, h('tr', {}, heads.map((t) => h('th', { scope: 'col' }, t)))), body),
  );
}

/// "Copy": the clipboard API where the page is a secure context (https, localhost), else the
/// browser's copy command on the selected field; the button says whether it worked.
function copyButton(input: HTMLInputElement): HTMLButtonElement {
  const button = h('button', { type: 'button', class: 'secondary' }, 'Copy');
  button.addEventListener('click', async () => {
    let copied = false;
    try {
      await navigator.clipboard.writeText(input.value);
      copied = true;
    } catch {
      input.focus();
      input.select();
      copied = document.execCommand('copy');
    }
    button.textContent = copied ? 'Copied' : 'Select and copy by hand';
    window.setTimeout(() => (button.textContent = 'Copy'), 3000);
  });
  return button;
}

function empty(cols: number, text: string) {
  return h('tr', {}, h('td', { colspan: cols, class: 'muted' }, text));
}

export async function adminPage(main: HTMLElement, user: Me) {
  if (!user.admin) {
    main.replaceChildren(h('h1', {}, 'Admin'), message('error', 'Only administrators may see this page.'));
    return;
  }
  const status = h('div', { 'aria-live': 'polite' });
  const nodes = h('tbody', {});
  const sessions = h('tbody', {});
  const users = h('tbody', {});
  const groups = h('tbody', {});
  const invitations = h('tbody', {});
  const invited = h('div', { 'aria-live': 'polite' });

  const inviteForm = h(
    'form',
    { class: 'inline', 'aria-label': 'New invitation' },
    field('Username (optional)', { name: 'username', autocomplete: 'off' }),
    field('Valid for (hours)', { name: 'hours', type: 'number', min: 1, max: 720, value: 168, required: true }),
    h('div', { class: 'field check' }, h('input', { type: 'checkbox', id: 'f-admin', name: 'admin', value: 'yes' }), h('label', { for: 'f-admin' }, 'Administrator')),
    h('button', { type: 'submit' }, 'Create invitation'),
  );
  inviteForm.addEventListener('submit', async (e) => {
    e.preventDefault();
    const v = formValues(inviteForm);
    invited.replaceChildren();
    try {
      const r = await api<{ code: string; invitation: Invitation }>('POST', '/api/admin/invitations', {
        username: v.username.trim() || null,
        admin: v.admin === 'yes',
        ttl_secs: Math.round(Number(v.hours) * 3600),
      });
      const link = `${location.origin}/join/${encodeURIComponent(r.code)}`;
      const input = h('input', { class: 'link', readonly: true, value: link, 'aria-label': 'Invitation link', 'data-testid': 'invite-link', onfocus: (ev: FocusEvent) => (ev.target as HTMLInputElement).select() });
      invited.replaceChildren(
        h(
          'div',
          { class: 'msg msg-ok', role: 'status' },
          'Invitation created. Send this link to the invitee; it is shown only once: ',
          h('div', { class: 'copy-row' }, input, copyButton(input)),
        ),
      );
      inviteForm.reset();
      await loadInvitations();
    } catch (err) {
      invited.replaceChildren(message('error', err instanceof ApiError ? err.message : String(err)));
    }
  });

  main.replaceChildren(
    h('h1', {}, 'Admin'),
    status,
    h('section', { 'aria-labelledby': 'h-sessions' }, h('h2', { id: 'h-sessions' }, 'Active sessions'), table('Active sessions', 'sessions', ['User', 'Target', 'Edge', 'Client', 'Since', 'In', 'Out', ''], sessions)),
    h('section', { 'aria-labelledby': 'h-nodes' }, h('h2', { id: 'h-nodes' }, 'Live nodes'), table('Live nodes', 'admin-nodes', ['Node', 'Owner', 'Host', 'CPU', 'Memory', 'Load', 'Connected', 'Last heartbeat'], nodes)),
    h('section', { 'aria-labelledby': 'h-inv' }, h('h2', { id: 'h-inv' }, 'Invitations'), inviteForm, invited, table('Invitations', 'invitations', ['For', 'Admin', 'By', 'Created', 'Expires', 'State', ''], invitations)),
    h('section', { 'aria-labelledby': 'h-users' }, h('h2', { id: 'h-users' }, 'Users'), table('Users', 'users', ['User', 'Role', 'Status', 'Created'], users)),
    h('section', { 'aria-labelledby': 'h-groups' }, h('h2', { id: 'h-groups' }, 'Groups'), table('Groups', 'groups', ['Group', 'Members'], groups)),
  );

  async function kick(s: Session) {
    if (!confirm(`End ${s.username}'s session on ${s.target_name}?`)) return;
    try {
      await api('POST', '/api/admin/sessions/kick', { session_id: s.session_id });
      status.replaceChildren(message('ok', `Ended ${s.username}'s session on ${s.target_name}.`));
      await loadLive();
    } catch (err) {
      status.replaceChildren(message('error', (err as Error).message));
    }
  }

  async function loadLive() {
    const r = await api<{ nodes: AdminNode[]; sessions: Session[] }>('GET', '/api/admin/live');
    sessions.replaceChildren(
      ...(r.sessions.length
        ? r.sessions.map((s) =>
            h(
              'tr',
              { 'data-session': s.session_id },
              h('td', {}, s.username),
              h('td', {}, s.target_name),
              h('td', {}, s.edge_kind || '—'),
              h('td', {}, s.client_ip || '—'),
              h('td', { title: when(s.started_at) }, ago(s.started_at)),
              h('td', {}, bytes(s.bytes_in)),
              h('td', {}, bytes(s.bytes_out)),
              h('td', {}, h('button', { type: 'button', class: 'danger', onclick: () => kick(s), 'aria-label': `Kick ${s.username} from ${s.target_name}` }, 'Kick')),
            ),
          )
        : [empty(8, 'No active sessions.')]),
    );
    nodes.replaceChildren(
      ...(r.nodes.length
        ? r.nodes.map((n) =>
            h('tr', {}, h('th', { scope: 'row' }, n.name), h('td', {}, n.owner), ...statsCells(n.stats).slice(0, 4), h('td', {}, ago(n.connected_at)), h('td', {}, ago(n.last_heartbeat))),
          )
        : [empty(8, 'No node is connected.')]),
    );
  }

  async function loadInvitations() {
    const r = await api<{ invitations: Invitation[] }>('GET', '/api/admin/invitations');
    invitations.replaceChildren(
      ...(r.invitations.length
        ? r.invitations.map((i) =>
            h(
              'tr',
              {},
              h('td', {}, i.username || h('span', { class: 'muted' }, 'invitee chooses')),
              h('td', {}, i.admin ? 'yes' : 'no'),
              h('td', {}, i.created_by),
              h('td', {}, when(i.created_at)),
              h('td', {}, when(i.expires_at)),
              h('td', {}, i.state + (i.used_by ? ` (${i.used_by})` : '')),
              h(
                'td',
                {},
                i.state === 'pending' &&
                  h(
                    'button',
                    {
                      type: 'button',
                      class: 'secondary',
                      onclick: async () => {
                        await api('POST', '/api/admin/invitations/revoke', { id: i.id }).catch((e) => status.replaceChildren(message('error', e.message)));
                        await loadInvitations();
                      },
                    },
                    'Revoke',
                  ),
              ),
            ),
          )
        : [empty(7, 'No invitations.')]),
    );
  }

  async function loadDirectory() {
    const r = await api<{ users: User[]; groups: Group[] }>('GET', '/api/admin/directory');
    users.replaceChildren(
      ...r.users.map((u) => h('tr', {}, h('th', { scope: 'row' }, u.username), h('td', {}, u.admin ? 'admin' : 'user'), h('td', {}, u.disabled ? 'disabled' : 'active'), h('td', {}, when(u.created_at)))),
    );
    groups.replaceChildren(
      ...(r.groups.length ? r.groups.map((g) => h('tr', {}, h('th', { scope: 'row' }, g.name), h('td', {}, g.members.join(', ') || '—'))) : [empty(2, 'No groups.')]),
    );
  }

  const guard = (f: () => Promise<void>) => () =>
    f().catch((e) => status.replaceChildren(message('error', `Could not refresh: ${(e as Error).message}`)));
  await Promise.all([guard(loadLive)(), guard(loadInvitations)(), guard(loadDirectory)()]);
  window.setInterval(guard(loadLive), LIVE_MS);
  window.setInterval(guard(loadDirectory), 15000);
}
