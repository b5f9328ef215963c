// The Commands panel of a node's page: the commands its agent declares, a form built from each
// command's parameter types, and a run whose NDJSON answer (POST /api/nodes/{node}/commands/
// {name}) is shown line by line as it arrives, then the exit code and the duration.
import { h, message } from './dom';

/// One parameter as the agent declares it (crates/tunnel/src/command: ParamInfo, kind flattened
/// into `type`).
export interface ParamInfo {
  name: string;
  type: 'string' | 'enum' | 'integer' | 'path';
  required: boolean;
  secret: boolean;
  default?: string | null;
  description?: string | null;
  pattern?: string | null;
  max_len?: number | null;
  values?: string[];
  min?: number | null;
  max?: number | null;
  root?: string | null;
}

export interface CommandInfo {
  name: string;
  description?: string | null;
  builtin: boolean;
  params: ParamInfo[];
  timeout_secs: number;
  output_limit_bytes: number;
}

/// Optional fields are absent from the JSON when unset.
export interface RunResult {
  exit_code?: number | null;
  signal?: number | null;
  duration_ms: number;
  stdout_bytes: number;
  stderr_bytes: number;
  stdout_truncated: boolean;
  stderr_truncated: boolean;
  timed_out: boolean;
  error?: string | null;
}

type Line =
  | { type: 'started'; node_id: string; node_name: string; correlation_id: string }
  | { type: 'stdout' | 'stderr'; data: string }
  | { type: 'finished'; result: RunResult };

/// The problem with `value` for `p`, in words for the user; null when the agent may accept it
/// (it checks again: this only saves a round trip).
export function paramProblem(p: ParamInfo, value: string): string | null {
  if (!value) return p.required ? `Enter ${p.name}.` : null;
  if (p.type === 'integer') {
    if (!/^-?[0-9]+$/.test(value)) return `${p.name} is a whole number.`;
    const n = Number(value);
    if (p.min != null && n < p.min) return `${p.name} is at least ${p.min}.`;
    if (p.max != null && n > p.max) return `${p.name} is at most ${p.max}.`;
  }
  if (p.type === 'enum' && p.values && !p.values.includes(value)) return `${p.name} is one of ${p.values.join(', ')}.`;
  if (p.type === 'string') {
    if (p.max_len && [...value].length > p.max_len) return `${p.name} is at most ${p.max_len} characters.`;
    if (p.pattern) {
      let re: RegExp | null = null;
      try {
        re = new RegExp(`^(?:${p.pattern})$`, 'u');
      } catch {
        re = null; // a pattern the browser cannot compile: the agent decides
      }
      if (re && !re.test(value)) return `${p.name} must match ${p.pattern}.`;
    }
  }
  if (p.type === 'path' && p.root && !value.startsWith('/')) return `${p.name} is an absolute path under ${p.root}.`;
  return null;
}

/// What the field's hint says: the type's rule, then the agent's description.
function hint(p: ParamInfo): string {
  const rule =
    p.type === 'integer'
      ? `A whole number${p.min != null ? ` from ${p.min}` : ''}${p.max != null ? ` to ${p.max}` : ''}.`
      : p.type === 'path'
        ? `A path under ${p.root ?? '/'}.`
        : p.type === 'string' && p.pattern
          ? `Matches ${p.pattern}.`
          : '';
  return [rule, p.description ?? ''].filter(Boolean).join(' ');
}

function control(p: ParamInfo, id: string, describedBy: string): HTMLInputElement | HTMLSelectElement {
  const common = { id, name: p.name, 'aria-describedby': describedBy, 'aria-required': p.required ? 'true' : undefined };
  if (p.type === 'enum') {
    // "(none)" only where leaving the parameter out is possible and means something: a
    // required one must be chosen, and one with a default has it selected.
    const omittable = !p.required && p.default == null;
    const options = (omittable ? [h('option', { value: '' }, '(none)')] : []).concat(
      (p.values ?? []).map((v) => h('option', { value: v, selected: v === p.default }, v)),
    );
    return h('select', common, options);
  }
  const attrs: Record<string, string | number | boolean | undefined> = { ...common, autocomplete: 'off', spellcheck: 'false' };
  if (p.secret) attrs.type = 'password';
  else if (p.type === 'integer') Object.assign(attrs, { type: 'number', step: 1, inputmode: 'numeric', min: p.min ?? undefined, max: p.max ?? undefined });
  else attrs.type = 'text';
  if (p.type === 'string' && p.max_len) attrs.maxlength = p.max_len;
  if (p.type === 'path') attrs.placeholder = p.root ?? '/';
  const input = h('input', attrs);
  if (p.default != null) input.value = p.default;
  return input;
}

/// The form for one command: a labelled control per parameter, Run and Stop, and the output.
export function commandForm(node: string, cmd: CommandInfo): HTMLElement {
  const fields: { p: ParamInfo; input: HTMLInputElement | HTMLSelectElement; error: HTMLElement }[] = [];
  const rows = cmd.params.map((p) => {
    const id = `param-${cmd.name}-${p.name}`;
    const error = h('p', { class: 'msg msg-error field-error', id: `${id}-error`, hidden: true });
    const help = h('p', { class: 'muted hint', id: `${id}-hint` }, hint(p));
    const input = control(p, id, `${id}-hint ${id}-error`);
    fields.push({ p, input, error });
    return h(
      'div',
      { class: 'field' },
      h('label', { for: id }, p.name, p.required ? h('span', { class: 'required' }, ' (required)') : null, p.secret ? h('span', { class: 'muted' }, ' (secret, never recorded)') : null),
      input,
      help,
      error,
    );
  });
  const run = h('button', { type: 'submit' }, 'Run');
  const stop = h('button', { type: 'button', class: 'secondary', hidden: true }, 'Stop');
  const problem = h('div', { 'aria-live': 'polite' });
  const output = h('pre', { class: 'command-output', role: 'log', 'aria-label': `Output of ${cmd.name}`, 'data-testid': 'command-output', tabindex: 0, hidden: true });
  const result = h('p', { class: 'command-result', role: 'status', 'data-testid': 'command-result' });
  let running: AbortController | null = null;

  const show = (f: (typeof fields)[number], text: string | null) => {
    f.error.textContent = text ?? '';
    f.error.hidden = text === null;
    if (text === null) f.input.removeAttribute('aria-invalid');
    else f.input.setAttribute('aria-invalid', 'true');
  };
  const form = h(
    'form',
    { class: 'command-form', novalidate: true, 'aria-label': `Run ${cmd.name}` },
    h('h3', {}, `Run ${cmd.name}`),
    cmd.description ? h('p', {}, cmd.description) : null,
    h('p', { class: 'muted' }, `Times out after ${cmd.timeout_secs} s; output is kept up to ${cmd.output_limit_bytes} bytes per stream.`),
    ...rows,
    problem,
    h('div', { class: 'actions' }, run, stop),
    output,
    result,
  );
  form.addEventListener('input', () => {
    for (const f of fields) if (!f.error.hidden) show(f, paramProblem(f.p, f.input.value));
  });
  stop.addEventListener('click', () => running?.abort());
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    if (running) return;
    let first: HTMLElement | null = null;
    const params: Record<string, string> = {};
    for (const f of fields) {
      const text = paramProblem(f.p, f.input.value);
      show(f, text);
      if (text && !first) first = f.input;
      if (f.input.value !== '') params[f.p.name] = f.input.value;
    }
    if (first) {
      first.focus();
      return;
    }
    problem.replaceChildren();
    output.replaceChildren();
    output.hidden = false;
    result.textContent = 'Running…';
    run.disabled = true;
    stop.hidden = false;
    running = new AbortController();
    try {
      await runCommand(node, cmd.name, params, running.signal, (line) => render(line, output, result));
    } catch (err) {
      result.textContent = '';
      const aborted = (err as Error).name === 'AbortError';
      problem.replaceChildren(message('error', aborted ? 'Stopped: the command was cancelled on the node.' : (err as Error).message));
    } finally {
      running = null;
      run.disabled = false;
      stop.hidden = true;
    }
  });
  return form;
}

function render(line: Line, output: HTMLElement, result: HTMLElement) {
  if (line.type === 'stdout' || line.type === 'stderr') {
    output.append(h('span', { class: line.type }, line.data));
    output.scrollTop = output.scrollHeight;
  } else if (line.type === 'started') {
    result.textContent = `Running (correlation id ${line.correlation_id})…`;
  } else if (line.type === 'finished') {
    result.replaceChildren(...summary(line.result));
  }
}

/// "Exit code 0 · 42 ms", plus what went wrong or was cut.
export function summary(r: RunResult): (HTMLElement | string)[] {
  const ok = r.exit_code === 0 && !r.timed_out && !r.error;
  const parts: string[] = [];
  if (r.exit_code != null) parts.push(`Exit code ${r.exit_code}`);
  if (r.signal != null) parts.push(`killed by signal ${r.signal}`);
  if (r.timed_out) parts.push('timed out');
  parts.push(`${r.duration_ms} ms`);
  if (r.stdout_truncated) parts.push('stdout truncated');
  if (r.stderr_truncated) parts.push('stderr truncated');
  const out: (HTMLElement | string)[] = [h('span', { class: ok ? 'badge on' : 'badge warn' }, ok ? 'succeeded' : 'failed'), ' ', parts.join(' · ')];
  if (r.error) out.push(` · ${r.error}`);
  return out;
}

/// POSTs the run and calls `each` for every NDJSON line as it arrives. A refusal before
/// anything ran is an HTTP error whose `{"error"}` becomes the thrown message.
export async function runCommand(node: string, name: string, params: Record<string, string>, signal: AbortSignal, each: (line: Line) => void): Promise<void> {
  const reply = await fetch(`/api/nodes/${encodeURIComponent(node)}/commands/${encodeURIComponent(name)}`, {
    method: 'POST',
    credentials: 'same-origin',
    cache: 'no-store',
    headers: { 'x-phirepass': '1', 'content-type': 'application/json', accept: 'application/x-ndjson' },
    body: JSON.stringify({ params }),
    signal,
  });
  if (!reply.ok || !reply.body) {
    let text = `${reply.status} ${reply.statusText}`;
    try {
      text = (await reply.json()).error ?? text;
    } catch {
      // not JSON: keep the status line
    }
    throw new Error(refusal(reply.status, text));
  }
  const reader = reply.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffered = '';
  let finished = false;
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffered += value;
    let nl: number;
    while ((nl = buffered.indexOf('\n')) >= 0) {
      const text = buffered.slice(0, nl).trim();
      buffered = buffered.slice(nl + 1);
      if (!text) continue;
      const line = JSON.parse(text) as Line;
      if (line.type === 'finished') finished = true;
      each(line);
    }
  }
  if (!finished) throw new Error('The connection ended before the command finished; its result is in the audit log.');
}

/// A refusal in words that say what to do.
function refusal(status: number, text: string): string {
  const what: Record<number, string> = {
    403: 'Not allowed',
    404: 'Not found',
    409: 'Refused by the agent',
    429: 'Busy',
    503: 'Node offline',
  };
  return what[status] ? `${what[status]}: ${text}` : text;
}
