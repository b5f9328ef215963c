// `/`: the nodes the user may reach, online or offline, refreshed every few seconds.
import { api, Me } from '../api';
import { ago, bytes, h, message } from '../dom';

export interface Stats {
  hostname: string;
  cpu_percent: number;
  mem_total_bytes: number;
  mem_used_bytes: number;
  load: number[];
  uptime_secs: number;
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
    h('td', {}, `${s.cpu_percent.toFixed(0)} %`),
    h('td', {}, `${bytes(s.mem_used_bytes)} / ${bytes(s.mem_total_bytes)}`),
    h('td', {}, s.load.map((l) => l.toFixed(2)).join(' ')),
  ];
}

export async function nodesPage(main: HTMLElement, _user: Me) {
  const body = h('tbody', {});
  const status = h('div', { 'aria-live': 'polite' });
  const updated = h('p', { class: 'muted' });
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
        h('thead', {}, h('tr', {}, ['Node', 'Status', 'Host', 'CPU', 'Memory', 'Load', 'Up', 'Last heartbeat', ''].map((t) => h('th', { scope: 'col' }, t)))),
        body,
      ),
    ),
    updated,
  );
  async function refresh() {
    try {
      const { nodes } = await api<{ nodes: NodeRow[] }>('GET', '/api/targets');
      status.replaceChildren();
      body.replaceChildren(
        ...(nodes.length
          ? nodes.map((n) =>
              h(
                'tr',
                { 'data-node': n.name },
                h('th', { scope: 'row' }, n.name),
                h('td', {}, h('span', { class: n.online ? 'badge on' : 'badge off' }, n.online ? 'online' : 'offline')),
                ...statsCells(n.stats),
                h('td', {}, n.stats ? uptime(n.stats.uptime_secs) : '—'),
                h('td', {}, ago(n.last_heartbeat)),
                h('td', {}, n.online ? h('a', { href: `/terminal/${encodeURIComponent(n.name)}`, class: 'button' }, 'Open terminal') : ''),
              ),
            )
          : [h('tr', {}, h('td', { colspan: 9 }, 'No nodes yet. Run ', h('code', {}, 'phirepass-agent login --device'), ' on a host, then approve it under “Activate a device”.'))]),
      );
      updated.textContent = `Updated ${new Date().toLocaleTimeString()}`;
    } catch (e) {
      status.replaceChildren(message('error', `Could not load nodes: ${(e as Error).message}`));
    }
  }
  await refresh();
  window.setInterval(refresh, REFRESH_MS);
}
