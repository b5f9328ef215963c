// /terminal/<node>: xterm.js over the browser protocol. The node's password is asked for in a
// dialog when the gateway answers requires_password, sent once, and never kept.
import { Terminal } from '@xterm/xterm';
import { FitAddon } from '@xterm/addon-fit';
import { control, data, decode } from './protocol';

const node = decodeURIComponent(location.pathname.replace(/^\/terminal\//, '').replace(/\/$/, ''));
const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const status = $('term-status');
const notice = $('term-notice');
const noticeText = $('term-notice-text');
const reconnect = $<HTMLButtonElement>('term-reconnect');
const dialog = $<HTMLDialogElement>('pw-dialog');
const pwForm = $<HTMLFormElement>('pw-form');
const pwUser = $<HTMLInputElement>('pw-user');
const pwPass = $<HTMLInputElement>('pw-pass');
const pwMessage = $('pw-message');
$('term-title').textContent = node;
document.title = `${node} · Phirepass`;

// The account name is not a secret: remember it per node so the dialog comes prefilled.
const userKey = `phirepass.account.${node}`;
const initialUser = new URLSearchParams(location.search).get('user') ?? localStorage.getItem(userKey) ?? '';

const term = new Terminal({
  cursorBlink: true,
  fontFamily: 'ui-monospace, "DejaVu Sans Mono", Menlo, Consolas, monospace',
  fontSize: 14,
  scrollback: 5000,
  theme: { background: '#101418' },
});
const fit = new FitAddon();
term.loadAddon(fit);
term.open($('terminal'));
fit.fit();

let ws: WebSocket | null = null;
let open = false; // a terminal session is running on this connection
let ended = false; // we reported the end; later socket events are not news
let account = initialUser;
let heartbeat: number | undefined;

function setStatus(text: string) {
  status.textContent = text;
}

function showEnded(text: string) {
  ended = true;
  open = false;
  setStatus('Disconnected');
  noticeText.textContent = text;
  notice.hidden = false;
  term.options.disableStdin = true;
  reconnect.focus();
}

function send(frame: Uint8Array) {
  if (ws && ws.readyState === WebSocket.OPEN) ws.send(frame);
}

function openTunnel(password?: string) {
  send(
    control({
      type: 'open_tunnel',
      node,
      username: account,
      password: password ?? null,
      cols: term.cols,
      rows: term.rows,
    }),
  );
}

function askPassword(reason: string) {
  pwMessage.textContent = reason;
  pwUser.value = account;
  pwPass.value = '';
  if (!dialog.open) dialog.showModal();
  (account ? pwPass : pwUser).focus();
}

pwForm.addEventListener('submit', (e) => {
  e.preventDefault();
  account = pwUser.value.trim();
  const password = pwPass.value;
  pwPass.value = '';
  if (!account || !password) return;
  localStorage.setItem(userKey, account);
  dialog.close();
  setStatus('Logging in…');
  openTunnel(password);
});
$('pw-cancel').addEventListener('click', () => {
  pwPass.value = '';
  dialog.close();
  showEnded('Not connected: no password given.');
});

function connect() {
  ended = false;
  open = false;
  notice.hidden = true;
  term.options.disableStdin = false;
  term.reset();
  setStatus('Connecting…');
  const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
  const socket = new WebSocket(`${scheme}//${location.host}/api/web/ws`);
  socket.binaryType = 'arraybuffer';
  ws = socket;
  socket.onmessage = (ev) => {
    if (socket !== ws) return;
    let frame;
    try {
      frame = decode(ev.data as ArrayBuffer);
    } catch (err) {
      showEnded(`Protocol error: ${(err as Error).message}`);
      socket.close();
      return;
    }
    if (frame.kind === 'data') {
      term.write(frame.data);
      return;
    }
    const msg = frame.msg as any;
    switch (msg.type) {
      case 'ok':
        if (msg.session_id) {
          open = true;
          setStatus('Connected');
          term.focus();
          fit.fit();
        } else {
          // Authenticated: ask for the terminal; the gateway says if it needs a password.
          // With no account name yet there is nothing to ask for: the dialog comes first.
          setStatus('Opening…');
          if (account) openTunnel();
          else askPassword(`Log in to ${node} with an account on that host.`);
        }
        break;
      case 'error':
        if (msg.kind === 'requires_password') {
          askPassword(msg.message);
        } else if (/not logged in/.test(msg.message)) {
          location.href = '/login?next=' + encodeURIComponent(location.pathname);
        } else {
          showEnded(msg.message);
        }
        break;
      case 'tunnel_closed': {
        const why = msg.reason ? msg.reason : msg.exit_status !== null && msg.exit_status !== undefined ? `exit status ${msg.exit_status}` : 'closed';
        showEnded(`Session ended (${why}).`);
        socket.close();
        break;
      }
      default:
        break;
    }
  };
  socket.onclose = () => {
    if (socket !== ws) return;
    window.clearInterval(heartbeat);
    if (!ended) showEnded(open ? 'Connection lost.' : 'Could not connect to the gateway.');
  };
  window.clearInterval(heartbeat);
  heartbeat = window.setInterval(() => send(control({ type: 'heartbeat' })), 20000);
}

term.onData((text) => {
  if (open) send(data(text));
});
// The size is shown in the bar (and kept on the element) so people and tests can check it.
const termEl = $('terminal');
const sizeEl = $('term-size');
function showSize(cols: number, rows: number) {
  termEl.dataset.size = `${cols}x${rows}`;
  sizeEl.textContent = `${cols}×${rows}`;
}
showSize(term.cols, term.rows);
term.onResize(({ cols, rows }) => {
  showSize(cols, rows);
  if (open) send(control({ type: 'resize', cols, rows }));
});
window.addEventListener('resize', () => fit.fit());
reconnect.addEventListener('click', connect);

connect();
