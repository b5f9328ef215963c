// `/nodes/<name>`: one node: its presence and its agent's self-report (version, uptime, last
// heartbeat, config file) from GET /api/nodes/{node}/status, refreshed every few seconds, and
// the Commands panel (the commands the agent declares, each with its form).
import { api, ApiError } from '../api';
import { ago, h, message, when } from '../dom';
import { CommandInfo, commandForm } from '../commands';
import { uptime } from './nodes';

interface AgentStatus {
  version: string;
  started_at: number;
  commands: CommandInfo[];
  config_path?: string | null;
}

interface NodeStatus {
  node_id: string;
  node_name: string;
  online: boolean;
  gateway_id: string | null;
  connected_at: number | null;
  last_heartbeat: number | null;
  agent: AgentStatus | null;
}

const REFRESH_MS = 5000;

function details(s: NodeStatus): HTMLElement {
  const a = s.agent;
  const rows: [string, Node | string][] = [
    ['Status', h('span', { class: s.online ? 'badge on' : 'badge off' }, s.online ? 'online' : 'offline')],
    ['Gateway', s.gateway_id ?? '—'],
    ['Connected since', when(s.connected_at)],
    ['Last heartbeat', ago(s.last_heartbeat)],
    ['Agent version', a?.version ?? '—'],
    ['Agent uptime', a ? uptime(Math.max(0, Math.round((Date.now() - a.started_at) / 1000))) : '—'],
    ['Agent config', a?.config_path ?? '—'],
  ];
  return h('dl', { class: 'details', 'data-testid': 'node-status' }, rows.flatMap(([k, v]) => [h('dt', {}, k), h('dd', { 'data-field': k }, v)]));
}

/// The list of declared commands; picking one shows its form below.
function commandsPanel(node: string, commands: CommandInfo[]): HTMLElement {
  const formSlot = h('div', {});
  const buttons: HTMLButtonElement[] = [];
  const pick = (cmd: CommandInfo, button: HTMLButtonElement) => {
    for (const b of buttons) b.setAttribute('aria-pressed', String(b === button));
    formSlot.replaceChildren(commandForm(node, cmd));
    formSlot.querySelector<HTMLElement>('input, select, button[type="submit"]')?.focus();
  };
  const list = h(
    'ul',
    { class: 'command-list', 'aria-label': 'Declared commands' },
    commands.map((cmd) => {
      const button = h('button', { type: 'button', class: 'secondary', 'aria-pressed': 'false', 'data-command': cmd.name }, cmd.name);
      button.addEventListener('click', () => pick(cmd, button));
      buttons.push(button);
      return h('li', {}, button, ' ', h('span', { class: 'muted' }, cmd.description ?? '', cmd.builtin ? ' (built in)' : ''));
    }),
  );
  return h(
    'div',
    {},
    commands.length ? list : h('p', { class: 'muted' }, 'The agent declares no commands. Declare them in its agent.toml (see docs/operations.md).'),
    formSlot,
  );
}

export async function nodePage(main: HTMLElement, name: string) {
  const heading = h('h1', { tabindex: -1 }, name);
  const status = h('div', { 'aria-live': 'polite' });
  const info = h('div', {});
  const panel = h('section', { 'aria-labelledby': 'commands-title' }, h('h2', { id: 'commands-title' }, 'Commands'));
  const offline = h('div', { 'aria-live': 'polite' });
  const panelBody = h('div', {});
  panel.append(offline, panelBody);
  main.replaceChildren(h('p', {}, h('a', { href: '/' }, '← All nodes')), heading, status, h('section', { 'aria-label': 'Agent status' }, h('h2', {}, 'Status'), info), panel);
  // The panel is rebuilt only when what the agent declares changes, so a form being filled in
  // and a run's output survive the refresh.
  let shownKey = '';
  async function refresh() {
    let s: NodeStatus;
    try {
      s = await api<NodeStatus>('GET', `/api/nodes/${encodeURIComponent(name)}/status`);
    } catch (e) {
      const text = e instanceof ApiError && e.status === 404 ? `No node named ${name} that you may reach.` : `Could not load the node: ${(e as Error).message}`;
      status.replaceChildren(message('error', text));
      return;
    }
    status.replaceChildren();
    info.replaceChildren(details(s));
    const commands = s.agent?.commands ?? [];
    const wasOnline = offline.childElementCount === 0;
    if (s.online !== wasOnline || !shownKey) {
      offline.replaceChildren(...(s.online ? [] : [message('error', 'The node is offline: commands run only while its agent is connected.')]));
    }
    const key = JSON.stringify(s.agent ? commands : null);
    if (key !== shownKey) {
      shownKey = key;
      if (!s.agent) panelBody.replaceChildren(h('p', { class: 'muted' }, s.online ? 'The agent has not reported its commands (an older agent).' : 'Its commands show once its agent connects.'));
      else panelBody.replaceChildren(commandsPanel(name, commands));
    }
  }
  await refresh();
  window.setInterval(() => void refresh(), REFRESH_MS);
}
