// /terminal/<node>: xterm.js over the browser protocol. The first open_tunnel carries no
// password: the gateway checks the node live (known, online, sshd answering) and only then
// answers requires_password, so nobody types a password for a node that cannot be reached. The
// password is asked for in a dialog, sent once, and never kept.
import { Terminal } from '@xterm/xterm';
import { FitAddon } from '@xterm/addon-fit';
import { control, data, decode } from './protocol';

const node = decodeURIComponent(location.pathname.replace(/^\/terminal\//, '').replace(/\/$/, ''));
const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const status = $('term-status');
const notice = $('term-notice');
const noticeText = $('term-notice-text');
const reconnect = $<HTMLButtonElement>('term-reconnect');
const backToNodes = $<HTMLAnchorElement>('term-back');
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

// The shipped font first (fonts.css): its underscore lies inside the cell, which DejaVu Sans
// Mono's (the default monospace of a fresh Debian) does not at this size, so `x86_64` showed as
// `x86 64`. xterm measures cells when it opens, so the font is loaded before that.
const FONT = '"JetBrains Mono"';
const FONT_SIZE = 14;
const term = new Terminal({
  cursorBlink: true,
  fontFamily: `${FONT}, ui-monospace, "DejaVu Sans Mono", Menlo, Consolas, monospace`,
  fontSize: FONT_SIZE,
  scrollback: 5000,
  theme: { background: '#101418' },
});
const fit = new FitAddon();
term.loadAddon(fit);

let ws: WebSocket | null = null;
let open = false; // a terminal session is running on this connection
let ended = false; // we reported the end; later socket events are not news
let account = initialUser;
let heartbeat: number | undefined;

function setStatus(text: string) {
  status.textContent = text;
}

/// Errors that another try cannot fix: the node is not one this user may open a terminal on.
const PERMANENT = /^unknown node |is a direct host|^access denied/;

function showEnded(text: string) {
  ended = true;
  open = false;
  const permanent = PERMANENT.test(text);
  setStatus(permanent ? 'Not available' : 'Disconnected');
  noticeText.textContent = text;
  notice.hidden = false;
  reconnect.hidden = permanent;
  backToNodes.hidden = !permanent;
  term.options.disableStdin = true;
  (permanent ? backToNodes : reconnect).focus();
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
  setStatus('Password needed');
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
  // A connection left from before (a cancelled dialog keeps it open) goes: the gateway drops
  // the SSH connection it had checked for it.
  const previous = ws;
  ws = null;
  previous?.close();
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
          // Authenticated: the gateway checks the node first and then asks for the password.
          setStatus(`Checking ${node}…`);
          openTunnel();
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
term.onResize(({ cols, rows }) => {
  showSize(cols, rows);
  if (open) send(control({ type: 'resize', cols, rows }));
});
window.addEventListener('resize', () => fit.fit());
reconnect.addEventListener('click', connect);

/// Loads the shipped font (a few seconds at most: a terminal in a fallback font beats none).
async function loadFont(): Promise<void> {
  const timeout = new Promise((resolve) => window.setTimeout(resolve, 3000));
  await Promise.race([document.fonts.load(`${FONT_SIZE}px ${FONT}`), timeout]).catch(() => undefined);
}

void loadFont().then(() => {
  term.open(termEl);
  fit.fit();
  showSize(term.cols, term.rows);
  connect();
});
