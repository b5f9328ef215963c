// Forms whose every error looks the same: the page checks each field itself (no browser
// tooltips, which look different in every browser), shows the message under the field in the
// one error style, and clears it as soon as the field is fixed. The server's answer lands under
// the field it is about, or above the button when it is about none.
import { ApiError } from './api';
import { h, message } from './dom';

type Attrs = Parameters<typeof h>[1];

export interface FieldSpec {
  name: string;
  label: string;
  attrs?: Attrs;
  /// The problem with the value, in words for the user; null when it is fine.
  check?: (value: string, all: Record<string, string>) => string | null;
}

export interface FormSpec {
  title: string;
  intro: (Node | string)[];
  fields: FieldSpec[];
  submit: string;
  onsubmit: (values: Record<string, string>) => Promise<void>;
  /// Which field a server error is about (by its text); none puts it above the button.
  fieldOf?: (error: string) => string | null;
  /// Shown above the button: where a page reports success.
  status?: HTMLElement;
}

export const required = (what: string) => (v: string) => (v.trim() ? null : `Enter ${what}.`);

/// The server's rules (services/authz/src/validate.rs), checked before anything is sent.
export const usernameRule = (v: string) =>
  /^[a-z0-9_.-]{1,32}$/.test(v.trim()) ? null : "A username is 1-32 characters of a-z, 0-9, '_', '.', '-'.";
export const passwordRule = (v: string) => {
  const n = [...v].length;
  return n >= 8 && n <= 1024 ? null : 'A password is 8 to 1024 characters long.';
};
/// A node name as authz accepts it (validate::node_name); also an `<input pattern>`, which
/// Chromium compiles with the `v` flag, where an unescaped `-` at the end of a class is an error.
export const NODE_NAME_PATTERN = '[a-z0-9][a-z0-9_.\\-]{0,62}';
export const nodeNameRule = (v: string) =>
  new RegExp(`^(?:${NODE_NAME_PATTERN})$`, 'u').test(v.trim())
    ? null
    : "A node name is 1-63 characters of a-z, 0-9, '_', '.', '-', starting with a letter or digit.";
export const repeatRule = (v: string, all: Record<string, string>) =>
  v === all.password ? null : 'The two passwords do not match.';

export function checkedForm(spec: FormSpec): HTMLFormElement {
  const button = h('button', { type: 'submit' }, spec.submit);
  const formError = h('div', { class: 'form-error', 'aria-live': 'polite' });
  const errors = new Map<string, HTMLElement>();
  const inputs = new Map<string, HTMLInputElement>();
  const fields = spec.fields.map((f) => {
    const id = 'f-' + f.name;
    const error = h('p', { class: 'msg msg-error field-error', id: `${id}-error`, hidden: true });
    const input = h('input', { id, name: f.name, 'aria-describedby': `${id}-error`, ...f.attrs });
    errors.set(f.name, error);
    inputs.set(f.name, input);
    return h('div', { class: 'field' }, h('label', { for: id }, f.label), input, error);
  });
  const el = h('form', { class: 'card', novalidate: true }, h('h1', {}, spec.title), ...spec.intro.map((p) => h('p', {}, p)), ...fields, spec.status ?? null, formError, button);

  const values = () => {
    const out: Record<string, string> = {};
    inputs.forEach((input, name) => (out[name] = input.value));
    return out;
  };
  const show = (name: string, text: string | null) => {
    const error = errors.get(name)!;
    const input = inputs.get(name)!;
    error.textContent = text ?? '';
    error.hidden = text === null;
    error.setAttribute('role', text === null ? 'none' : 'alert');
    if (text === null) input.removeAttribute('aria-invalid');
    else input.setAttribute('aria-invalid', 'true');
  };
  const problem = (f: FieldSpec, all: Record<string, string>) => (f.check ? f.check(inputs.get(f.name)!.value, all) : null);

  // Typing re-checks every field that shows an error (the repeated password depends on the
  // first), so each message goes away the moment its field is right.
  // A server's error (a wrong code) goes when its own field is edited.
  el.addEventListener('input', (e) => {
    const all = values();
    formError.replaceChildren();
    for (const f of spec.fields) {
      const error = errors.get(f.name)!;
      if (!error.hidden && (error.dataset.server !== 'true' || e.target === inputs.get(f.name))) {
        delete error.dataset.server;
        show(f.name, problem(f, all));
      }
    }
  });

  el.addEventListener('submit', async (e) => {
    e.preventDefault();
    const all = values();
    let first: HTMLInputElement | null = null;
    for (const f of spec.fields) {
      const text = problem(f, all);
      show(f.name, text);
      if (text && !first) first = inputs.get(f.name)!;
    }
    formError.replaceChildren();
    if (first) {
      first.focus();
      return;
    }
    button.disabled = true;
    try {
      await spec.onsubmit(all);
    } catch (err) {
      const text = err instanceof ApiError ? err.message : String(err);
      const name = spec.fieldOf?.(text) ?? null;
      if (name && errors.has(name)) {
        show(name, sentence(text));
        errors.get(name)!.dataset.server = 'true';
        inputs.get(name)!.focus();
      } else {
        formError.replaceChildren(message('error', sentence(text)));
      }
    } finally {
      button.disabled = false;
    }
  });
  return el;
}

/// "wrong setup code" -> "Wrong setup code."
function sentence(text: string): string {
  const t = text.trim();
  if (!t) return t;
  return t[0].toUpperCase() + t.slice(1) + (/[.!?]$/.test(t) ? '' : '.');
}
