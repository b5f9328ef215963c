// "Your tunnels" on `/`: the user's `ssh -R` tunnels (reserved names and live tunnels) from
// GET /api/tunnels, with the public link of each live HTTP tunnel.
import { api, Me } from '../api';
import { h, message, when } from '../dom';

interface TunnelRow {
  name: string;
  online: boolean;
  kind: 'http' | 'alias' | null;
  port: number | null;
  url: string | null;
  reserved: boolean;
  created_at: number | null;
  since: number | null;
}

interface Tunnels {
  tunnels: TunnelRow[];
  tunnel_domain: string | null;
  /// The exact `ssh -R` command for this deployment; absent when the gateway does not know
  /// where ssh-edge is.
  ssh_command?: string | null;
}

const COLS = 4;

function address(t: TunnelRow): Node | string {
  if (t.url) return h('a', { href: t.url, target: '_blank', rel: 'noopener noreferrer' }, t.url);
  if (t.kind === 'http') return 'no public URL (this gateway has no tunnel domain)';
  if (t.kind === 'alias') return `private alias, port ${t.port} (through ssh-edge)`;
  return '—';
}

function row(t: TunnelRow): HTMLTableRowElement {
  return h(
    'tr',
    { 'data-tunnel': t.name },
    h('th', { scope: 'row' }, t.name),
    h('td', {}, h('span', { class: t.online ? 'badge on' : 'badge off' }, t.online ? 'online' : 'offline')),
    h('td', { class: 'wrap' }, address(t)),
    h('td', {}, t.online ? `since ${when(t.since)}` : t.reserved ? `reserved ${when(t.created_at)}` : '—'),
  );
}

function hint(user: Me, data: Tunnels): HTMLTableRowElement {
  const command = data.ssh_command ?? `ssh -R 80:localhost:3000 ${user.username}@<ssh-edge host>`;
  return h(
    'tr',
    {},
    h(
      'td',
      { colspan: COLS, class: 'muted wrap' },
      'No tunnels yet. Publish a local web server on port 3000 with ',
      h('code', { 'data-testid': 'tunnel-hint' }, command),
      data.ssh_command ? '' : ' (this gateway was not told where ssh-edge listens: its operator sets SSH_EDGE_PUBLIC_ADDR)',
      data.tunnel_domain ? `; its address, under ${data.tunnel_domain}, shows up here.` : '. This gateway has no tunnel domain, so HTTP tunnels get no public URL here.',
    ),
  );
}

/// The section, and a function that refreshes it (the page calls it with the nodes).
export function tunnelsSection(user: Me): { section: HTMLElement; refresh: () => Promise<void> } {
  const body = h('tbody', {});
  const status = h('div', { 'aria-live': 'polite' });
  const section = h(
    'section',
    { 'aria-labelledby': 'tunnels-h' },
    h('h2', { id: 'tunnels-h' }, 'Your tunnels'),
    status,
    h(
      'div',
      { class: 'table-wrap' },
      h(
        'table',
        { 'data-testid': 'tunnels' },
        h('caption', { class: 'sr-only' }, 'Your ssh -R tunnels'),
        h('thead', {}, h('tr', {}, ['Name', 'Status', 'Address', 'When'].map((t) => h('th', { scope: 'col' }, t)))),
        body,
      ),
    ),
  );
  // Rows are rebuilt only when the answer changes, so a focused link keeps its focus.
  let last = '';
  async function refresh() {
    try {
      const data = await api<Tunnels>('GET', '/api/tunnels');
      status.replaceChildren();
      const key = JSON.stringify(data);
      if (key === last) return;
      last = key;
      body.replaceChildren(...(data.tunnels.length ? data.tunnels.map(row) : [hint(user, data)]));
    } catch (e) {
      status.replaceChildren(message('error', `Could not load tunnels: ${(e as Error).message}`));
    }
  }
  return { section, refresh };
}
