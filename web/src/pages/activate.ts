// `/activate`: approve a waiting `phirepass-agent login --device` or `phirepass login --device`.
// Opening a link approves nothing: a code (typed, or from `?code=`) is only looked up, the page
// shows what it asks for (kind, hostname, source address, when) and the person confirms that very
// request with a click. An existing node is replaced, and a command line gets admin scope, only
// when ticked here.
import { api, ApiError, Me } from '../api';
import { ago, h, message, when } from '../dom';
import { checkedForm, NODE_NAME_PATTERN, nodeNameRule, required } from '../form';

interface ExistingNode {
  name: string;
  created_at: number;
  /// null: the registry could not say.
  online: boolean | null;
  last_seen: number | null;
}

interface Details {
  device_id: string;
  kind: 'agent' | 'cli';
  hostname: string;
  client_ip: string;
  created_at: number;
  expires_at: number;
  now: number;
  node_name: string;
  existing_node: ExistingNode | null;
  can_grant_admin: boolean;
}

interface Approved {
  kind: string;
  node: { name: string } | null;
  scopes: string[];
  replaced: boolean;
}

const CODE = /^[A-Za-z]{4}-?[A-Za-z]{4}$/;

export function activatePage(main: HTMLElement, _user: Me) {
  const preset = (new URLSearchParams(location.search).get('code') ?? '').trim();
  const status = h('div', { 'aria-live': 'polite' });
  const lookup = checkedForm({
    title: 'Activate a device',
    intro: ['Enter the code the waiting agent or `phirepass login --device` printed. You will see what it asks for before anything is approved.'],
    fields: [
      {
        name: 'user_code',
        label: 'Device code',
        attrs: { autocomplete: 'off', value: preset, placeholder: 'XXXX-XXXX', spellcheck: 'false', autocapitalize: 'characters' },
        check: required('the code the device printed'),
      },
    ],
    submit: 'Review request',
    status,
    fieldOf: (e) => (/code/i.test(e) ? 'user_code' : null),
    onsubmit: async (v) => {
      status.replaceChildren();
      const code = v.user_code.trim().toUpperCase();
      const details = await inspect(code, '');
      main.replaceChildren(review(code, details, showLookup));
      // Never the Approve button: a stray Enter must not approve.
      (main.querySelector('input[name=node_name], h1') as HTMLElement | null)?.focus();
    },
  });
  const showLookup = (done?: HTMLElement) => {
    lookup.reset();
    // The code is used (or given up): do not offer it again.
    (lookup.querySelector('input') as HTMLInputElement).value = '';
    status.replaceChildren(...(done ? [done] : []));
    main.replaceChildren(lookup);
    (lookup.querySelector('input') as HTMLInputElement | null)?.focus();
  };
  main.replaceChildren(lookup);
  // A code in the link is looked up (read only), never approved.
  if (CODE.test(preset)) lookup.requestSubmit();
  else (lookup.querySelector('input') as HTMLInputElement | null)?.focus();

  function review(code: string, d: Details, back: (done?: HTMLElement) => void): HTMLElement {
    const error = h('div', { class: 'form-error', 'aria-live': 'polite' });
    const approve = h('button', { type: 'submit' }, 'Approve');
    const cancel = h('button', { type: 'button', class: 'secondary', onclick: () => back() }, 'Cancel');
    const rows: [string, Node | string][] = [
      ['Kind', d.kind === 'agent' ? 'Agent enrolment (phirepass-agent login --device)' : 'Command-line login (phirepass login --device)'],
      ['Hostname', d.hostname ? h('code', {}, d.hostname) : h('span', { class: 'muted' }, 'not given')],
      ['Source address', d.client_ip ? h('code', {}, d.client_ip) : h('span', { class: 'muted' }, 'unknown')],
      ['Requested', h('span', { title: when(d.created_at) }, since(d.now, d.created_at))],
    ];
    const list = h('dl', { class: 'details' }, ...rows.flatMap(([k, v]) => [h('dt', {}, k), h('dd', {}, v)]));
    const caution = h(
      'p',
      { class: 'caution' },
      'Approve only if you started this yourself, just now, on that machine. Whoever started it gets ',
      d.kind === 'agent' ? 'a node in your name.' : 'access to Phirepass as you.',
    );
    const extra: HTMLElement[] = [];
    let nameInput: HTMLInputElement | null = null;
    let replaceBox: HTMLInputElement | null = null;
    let adminBox: HTMLInputElement | null = null;
    const replaceSlot = h('div', {});
    const nameError = h('p', { class: 'msg msg-error field-error', id: 'f-node_name-error', hidden: true });
    const showNameError = (text: string | null) => {
      nameError.textContent = text ?? '';
      nameError.hidden = text === null;
      nameError.setAttribute('role', text === null ? 'none' : 'alert');
    };
    const renderReplace = (node: ExistingNode | null) => {
      replaceBox = null;
      if (!node) return replaceSlot.replaceChildren();
      replaceBox = h('input', { type: 'checkbox', id: 'f-replace', name: 'replace' });
      replaceSlot.replaceChildren(
        h('p', { class: 'caution' }, `You already have a node named “${node.name}”. Approving under that name gives it a new token: the agent using it now is disconnected.`),
        h('div', { class: 'field check' }, replaceBox, h('label', { for: 'f-replace' }, `Replace existing node ${node.name} (${seen(node, d.now)})`)),
      );
    };
    if (d.kind === 'agent') {
      const suggested = nodeNameRule(d.node_name) === null ? d.node_name : '';
      nameInput = h('input', {
        id: 'f-node_name',
        name: 'node_name',
        autocomplete: 'off',
        autocapitalize: 'none',
        spellcheck: 'false',
        pattern: NODE_NAME_PATTERN,
        placeholder: 'web-1',
        value: suggested,
        'aria-describedby': 'f-node_name-error',
      });
      const input = nameInput;
      // A new name is checked for one of the person's nodes it would replace.
      input.addEventListener('input', () => showNameError(null));
      input.addEventListener('change', async () => {
        const name = input.value.trim();
        if (nodeNameRule(name) !== null) return renderReplace(null);
        try {
          renderReplace((await inspect(code, name)).existing_node);
        } catch (e) {
          error.replaceChildren(message('error', e instanceof Error ? e.message : String(e)));
        }
      });
      extra.push(h('div', { class: 'field' }, h('label', { for: 'f-node_name' }, 'Node name'), nameInput, nameError), replaceSlot);
      renderReplace(suggested && d.existing_node ? d.existing_node : null);
    } else {
      extra.push(h('p', {}, 'The login gets read access as you (scope “read”).'));
      if (d.can_grant_admin) {
        adminBox = h('input', { type: 'checkbox', id: 'f-admin_scope', name: 'admin_scope' });
        extra.push(h('div', { class: 'field check' }, adminBox, h('label', { for: 'f-admin_scope' }, 'Also grant admin scope (it can then manage users, grants and tokens)')));
      }
    }
    const form = h('form', { class: 'card', novalidate: true }, h('h1', { tabindex: -1 }, 'Approve this device?'), list, caution, ...extra, error, h('div', { class: 'actions' }, approve, cancel));
    form.addEventListener('submit', async (e) => {
      e.preventDefault();
      error.replaceChildren();
      const name = nameInput?.value.trim() ?? '';
      if (nameInput) {
        const problem = nodeNameRule(name);
        showNameError(problem);
        if (problem) return nameInput.focus();
      }
      approve.disabled = true;
      try {
        const r = await api<Approved>('POST', '/api/device/approve', {
          user_code: code,
          device_id: d.device_id,
          node_name: name,
          replace_node: replaceBox?.checked ?? false,
          admin_scope: adminBox?.checked ?? false,
        });
        back(done(r));
      } catch (err) {
        const text = err instanceof ApiError ? err.message : String(err);
        if (err instanceof ApiError && err.status === 409 && nameInput && /already|taken/i.test(text)) {
          showNameError(text);
          // Offer the replace choice when the name is one of the person's own nodes.
          inspect(code, name).then((again) => renderReplace(again.existing_node), () => undefined);
          nameInput.focus();
        } else {
          error.replaceChildren(message('error', text));
        }
      } finally {
        approve.disabled = false;
      }
    });
    return form;
  }
}

async function inspect(code: string, nodeName: string): Promise<Details> {
  return api<Details>('POST', '/api/device/inspect', { user_code: code, node_name: nodeName });
}

function done(r: Approved): HTMLElement {
  // The agent only stores its token here; the node comes online when it is started.
  const text =
    r.kind === 'agent' && r.node
      ? [
          `Approved: node “${r.node.name}” was ${r.replaced ? 'given a new token' : 'created'}. The waiting agent saves its token and exits; start it with `,
          h('code', {}, 'phirepass-agent start'),
          ' on that host to bring the node online.',
        ]
      : [`Approved: the waiting command-line client receives its token (scopes: ${r.scopes.join(', ')}).`];
  const ok = message('ok', '');
  ok.replaceChildren(...text);
  return ok;
}

/// "3 min ago" by the gateway's clock (the browser's may be off).
function since(now: number, at: number): string {
  return ago(Date.now() - (now - at));
}

function seen(node: ExistingNode, now: number): string {
  if (node.online === true) return node.last_seen ? `online, last seen ${since(now, node.last_seen)}` : 'online';
  if (node.online === false) return `offline, not connected to any gateway; registered ${when(node.created_at)}`;
  return 'status unknown';
}
