// `/activate`: approve a waiting `phirepass-agent login --device` (or CLI) by its short code.
import { api, ApiError, Me } from '../api';
import { field, formValues, h, message } from '../dom';

export function activatePage(main: HTMLElement, _user: Me) {
  const preset = new URLSearchParams(location.search).get('code') ?? '';
  const status = h('div', { 'aria-live': 'polite' });
  const button = h('button', { type: 'submit' }, 'Approve');
  const form = h(
    'form',
    { class: 'card' },
    h('h1', {}, 'Activate a device'),
    h('p', {}, 'Enter the code the waiting agent or `phirepass login --device` printed. For an agent, also the name this node should have.'),
    field('Device code', { name: 'user_code', required: true, autocomplete: 'off', value: preset, placeholder: 'XXXX-XXXX', spellcheck: 'false', autocapitalize: 'characters' }),
    field('Node name (agents only)', { name: 'node_name', autocomplete: 'off', pattern: '[A-Za-z0-9_.-]{1,64}', title: 'letters, digits, dot, dash, underscore' }),
    status,
    button,
  );
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const v = formValues(form);
    button.disabled = true;
    status.replaceChildren();
    try {
      const r = await api<{ kind: string; node: { name: string } | null }>('POST', '/api/device/approve', {
        user_code: v.user_code.trim().toUpperCase(),
        node_name: v.node_name.trim(),
      });
      const text = r.kind === 'agent' && r.node ? `Approved: node “${r.node.name}” was created; the waiting agent receives its token and starts.` : 'Approved: the waiting command-line client receives its token.';
      status.replaceChildren(message('ok', text));
      form.reset();
    } catch (err) {
      status.replaceChildren(message('error', err instanceof ApiError ? err.message : String(err)));
    } finally {
      button.disabled = false;
    }
  });
  main.replaceChildren(form);
  (form.querySelector(preset ? 'input[name=node_name]' : 'input') as HTMLInputElement | null)?.focus();
}
