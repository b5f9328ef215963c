// `/activate`: approve a waiting `phirepass-agent login --device` (or CLI) by its short code.
import { api, Me } from '../api';
import { h, message } from '../dom';
import { checkedForm, NODE_NAME_PATTERN, nodeNameRule, required } from '../form';

interface Approved {
  kind: string;
  node: { name: string } | null;
}

export function activatePage(main: HTMLElement, _user: Me) {
  const preset = new URLSearchParams(location.search).get('code') ?? '';
  const status = h('div', { 'aria-live': 'polite' });
  const form = checkedForm({
    title: 'Activate a device',
    intro: ['Enter the code the waiting agent or `phirepass login --device` printed. For an agent, also the name this node should have.'],
    fields: [
      {
        name: 'user_code',
        label: 'Device code',
        attrs: { autocomplete: 'off', value: preset, placeholder: 'XXXX-XXXX', spellcheck: 'false', autocapitalize: 'characters' },
        check: required('the code the device printed'),
      },
      {
        name: 'node_name',
        label: 'Node name (agents only)',
        attrs: { autocomplete: 'off', autocapitalize: 'none', spellcheck: 'false', pattern: NODE_NAME_PATTERN, placeholder: 'web-1' },
        check: (v) => (v.trim() ? nodeNameRule(v) : null),
      },
    ],
    submit: 'Approve',
    status,
    fieldOf: (e) => (/node name|name .*taken|already/i.test(e) ? 'node_name' : /code/i.test(e) ? 'user_code' : null),
    onsubmit: async (v) => {
      status.replaceChildren();
      const r = await api<Approved>('POST', '/api/device/approve', {
        user_code: v.user_code.trim().toUpperCase(),
        node_name: v.node_name.trim(),
      });
      // The agent only stores its token here; the node comes online when it is started.
      const text =
        r.kind === 'agent' && r.node
          ? [
              `Approved: node “${r.node.name}” was created. The waiting agent saves its token and exits; start it with `,
              h('code', {}, 'phirepass-agent start'),
              ' on that host to bring the node online.',
            ]
          : ['Approved: the waiting command-line client receives its token.'];
      const ok = message('ok', '');
      ok.replaceChildren(...text);
      status.replaceChildren(ok);
      form.reset();
    },
  });
  main.replaceChildren(form);
  (form.querySelector(preset ? 'input[name=node_name]' : 'input') as HTMLInputElement | null)?.focus();
}
