// `/`: the nodes the user may reach, online or offline (with "Open port…" when the gateway
// serves app hosts; each name links to the node's page), and the user's tunnels; refreshed
// every few seconds.
import { api, ApiError, Me } from '../api';
import { ago, bytes, h, message } from '../dom';
import { tunnelsSection } from './tunnels';

export interface Stats {
  hostname: string;
  /// null on the first heartbeat: a CPU figure needs two samples.
  cpu_percent: number | null;
  mem_total_bytes: number;
  mem_used_bytes: number;
  load: number[];
  uptime_secs: number;
  /// The ports the agent allows (its ALLOWED_PORTS); null or absent from older agents.
  allowed_ports?: number[] | null;
  /// Whether the agent's SSH_HOST:SSH_PORT answered its last check; absent or null: unknown.
  ssh_reachable?: boolean | null;
}

interface NodeRow {
  node_id: string;
  name: string;
  online: boolean;
  reason: string;
  last_heartbeat: number | null;
  stats: Stats | null;
}

const REFRESH_MS = 3000;

export function uptime(secs: number): string {
  const d = Math.floor(secs / 86400);
  const hrs = Math.floor((secs % 86400) / 3600);
  const m = Math.floor((secs % 3600) / 60);
  return d ? `${d} d ${hrs} h` : hrs ? `${hrs} h ${m} min` : `${m} min`;
}

export function statsCells(s: Stats | null): HTMLElement[] {
  if (!s) return [h('td', {}, '—'), h('td', {}, '—'), h('td', {}, '—'), h('td', {}, '—')];
  return [
    h('td', {}, s.hostname),
    h('td', {}, s.cpu_percent === null || s.cpu_percent === undefined ? '—' : `${s.cpu_percent.toFixed(0)} %`),
    h('td', {}, `${bytes(s.mem_used_bytes)} / ${bytes(s.mem_total_bytes)}`),
    h('td', {}, s.load.map((l) => l.toFixed(2)).join(' ')),
  ];
}

/// A port number as typed: 1..65535, digits only; null otherwise.
export function parsePort(raw: string): number | null {
  const text = raw.trim();
  if (!/^[0-9]{1,5}$/.test(text)) return null;
  const port = Number(text);
  return port >= 1 && port <= 65535 ? port : null;
}

function openApp(node: string, port: number) {
  window.open(`/api/apps/open?node=${encodeURIComponent(node)}&port=${port}`, '_blank', 'noopener');
}

/// What the app-port cell offers: the agent's allowed ports when it reports them (only those, or
/// how to allow one when there are none), else a port to type (the agent decides).
function portControl(node: string, allowed: number[] | undefined): HTMLElement {
  if (allowed === undefined) return openPortForm(node);
  if (!allowed.length) {
    return h(
      'span',
      { class: 'muted port-hint', 'data-testid': 'no-ports' },
      'None allowed: set ',
      h('code', {}, 'ALLOWED_PORTS=8080'),
      ' on the agent.',
    );
  }
  const id = `port-${node}`;
  const select = h('select', { id, name: 'port' }, allowed.map((p) => h('option', { value: p }, String(p))));
  return h(
    'form',
    {
      class: 'open-port',
      onsubmit: (e: Event) => {
        e.preventDefault();
        openApp(node, Number(select.value));
      },
    },
    h('label', { for: id, class: 'sr-only' }, `Port on ${node}`),
    select,
    h('button', { type: 'submit', class: 'secondary' }, 'Open port…'),
  );
}

/// "Open port…" for an agent that does not report its ports: opens /api/apps/open in a new tab,
/// which redirects to the app host (the gateway checks the grant and the agent its ALLOWED_PORTS).
function openPortForm(node: string): HTMLFormElement {
  const id = `port-${node}`;
  const error = h('span', { class: 'port-error', id: `${id}-error`, role: 'alert' });
  const input = h('input', {
    id,
    name: 'port',
    type: 'text',
    inputmode: 'numeric',
    autocomplete: 'off',
    placeholder: 'port',
    size: 6,
    'aria-describedby': `${id}-error`,
  });
  const form = h(
    'form',
    {
      class: 'open-port',
      novalidate: true,
      onsubmit: (e: Event) => {
        e.preventDefault();
        const port = parsePort(input.value);
        if (port === null) {
          input.setAttribute('aria-invalid', 'true');
          error.textContent = 'Enter a port from 1 to 65535.';
          input.focus();
          return;
        }
        input.removeAttribute('aria-invalid');
        error.textContent = '';
        openApp(node, port);
      },
    },
    h('label', { for: id, class: 'sr-only' }, `Port on ${node}`),
    input,
    h('button', { type: 'submit', class: 'secondary' }, 'Open port…'),
    error,
  );
  return form;
}

/// Online, but its agent found no SSH server: the terminal would fail, so say it here too.
function sshWarning(n: NodeRow): HTMLElement | null {
  if (!n.online || n.stats?.ssh_reachable !== false) return null;
  return h('span', { class: 'badge warn', title: "The agent's SSH_HOST:SSH_PORT did not answer as an SSH server at its last check" }, 'no sshd');
}

interface Shown {
  row: HTMLTableRowElement;
  /// The last cell, kept across refreshes so a port being typed is not lost.
  port: HTMLTableCellElement;
  /// What the cell was built for (the allowed ports), to rebuild it only when that changes.
  portKey: string;
}

interface LiveNode {
  name: string;
  owner: string;
}

/// The empty table's one row. An administrator sees every live node on /admin but here only
/// those owned or granted: say so, and how to grant, rather than "no nodes yet".
async function emptyState(user: Me): Promise<(HTMLElement | string)[]> {
  let live: LiveNode[] = [];
  if (user.admin) {
    try {
      live = (await api<{ nodes: LiveNode[] }>('GET', '/api/admin/live')).nodes;
    } catch (e) {
      if (!(e instanceof ApiError)) throw e;
    }
  }
  if (live.length) {
    const names = live.map((n) => `${n.name} (${n.owner}'s)`).join(', ');
    return [
      h('strong', {}, `${live.length} node${live.length === 1 ? ' is' : 's are'} connected, but none is granted to you: `),
      `${names}. `,
      'Nodes show up here for their owner and for users granted access. Grant yourself one with ',
      h('code', { 'data-testid': 'grant-hint' }, `phirepass admin access grant --user ${user.username} --node ${live[0].name}`),
      ', or see them all under ',
      h('a', { href: '/admin' }, 'Admin'),
      '.',
    ];
  }
  return [
    'No nodes yet. Run ',
    h('code', {}, 'phirepass-agent login --device'),
    ' on a host, then approve it under “Activate a device”',
    user.admin ? '.' : ', or ask an administrator to grant you access to a node.',
  ];
}

export async function nodesPage(main: HTMLElement, user: Me) {
  const body = h('tbody', {});
  const status = h('div', { 'aria-live': 'polite' });
  const updated = h('p', { class: 'muted' });
  const tunnels = tunnelsSection(user);
  main.replaceChildren(
    h('h1', {}, 'Nodes'),
    status,
    h(
      'div',
      { class: 'table-wrap' },
      h(
        'table',
        { 'data-testid': 'nodes' },
        h('caption', { class: 'sr-only' }, 'Nodes you may reach'),
        h('thead', {}, h('tr', {}, ['Node', 'Status', 'Host', 'CPU', 'Memory', 'Load', 'Up', 'Last heartbeat', '', 'App port'].map((t) => h('th', { scope: 'col' }, t)))),
        body,
      ),
    ),
    updated,
    tunnels.section,
  );
  const shown = new Map<string, Shown>();
  // Rows are updated in place: the open-port cell (and its input) survives every refresh.
  async function render(nodes: NodeRow[], appsEnabled: boolean) {
    if (!nodes.length) {
      shown.clear();
      const text = await emptyState(user);
      body.replaceChildren(h('tr', {}, h('td', { colspan: 10, class: 'wrap', 'data-testid': 'nodes-empty' }, ...text)));
      return;
    }
    const rows: HTMLTableRowElement[] = [];
    for (const n of nodes) {
      let s = shown.get(n.name);
      if (!s) {
        const port = h('td', {});
        s = { row: h('tr', { 'data-node': n.name }, port), port, portKey: '' };
        shown.set(n.name, s);
      }
      while (s.row.firstChild && s.row.firstChild !== s.port) s.row.firstChild.remove();
      s.port.before(
        h('th', { scope: 'row' }, h('a', { href: `/nodes/${encodeURIComponent(n.name)}`, title: `Status and commands of ${n.name}` }, n.name)),
        h('td', {}, h('span', { class: n.online ? 'badge on' : 'badge off' }, n.online ? 'online' : 'offline'), sshWarning(n)),
        ...statsCells(n.stats),
        h('td', {}, n.stats ? uptime(n.stats.uptime_secs) : '—'),
        h('td', {}, ago(n.last_heartbeat)),
        h('td', {}, n.online ? h('a', { href: `/terminal/${encodeURIComponent(n.name)}`, class: 'button' }, 'Open terminal') : ''),
      );
      const offer = appsEnabled && n.online;
      const allowed = n.stats?.allowed_ports ?? undefined;
      const key = offer ? JSON.stringify(allowed ?? null) : '';
      if (key !== s.portKey) {
        s.port.replaceChildren(...(offer ? [portControl(n.name, allowed)] : []));
        s.portKey = key;
      }
      rows.push(s.row);
    }
    const names = new Set(nodes.map((n) => n.name));
    for (const name of [...shown.keys()]) if (!names.has(name)) shown.delete(name);
    const current = Array.from(body.children);
    if (current.length !== rows.length || rows.some((r, i) => current[i] !== r)) body.replaceChildren(...rows);
  }
  async function refresh() {
    try {
      const { nodes, apps_enabled } = await api<{ nodes: NodeRow[]; apps_enabled?: boolean }>('GET', '/api/targets');
      status.replaceChildren();
      await render(nodes, apps_enabled === true);
      updated.textContent = `Updated ${new Date().toLocaleTimeString()}`;
    } catch (e) {
      status.replaceChildren(message('error', `Could not load nodes: ${(e as Error).message}`));
    }
  }
  await Promise.all([refresh(), tunnels.refresh()]);
  window.setInterval(() => {
    void refresh();
    void tunnels.refresh();
  }, REFRESH_MS);
}
