// Every page except the terminal: login, nodes, admin dashboard, first-run setup, invitations,
// device activation. The gateway serves one shell for all of them; this picks the page by path.
import { api, ApiError, me, Me, toLogin } from './api';
import { h } from './dom';
import { loginPage, setupPage, joinPage } from './pages/account';
import { nodesPage } from './pages/nodes';
import { nodePage } from './pages/node';
import { adminPage } from './pages/admin';
import { activatePage } from './pages/activate';

const main = document.getElementById('main') as HTMLElement;
const top = document.getElementById('top') as HTMLElement;

function header(user: Me | null) {
  const links: [string, string][] = user
    ? [['/', 'Nodes'], ['/activate', 'Activate a device'], ...(user.admin ? [['/admin', 'Admin'] as [string, string]] : [])]
    : [];
  const path = location.pathname;
  top.replaceChildren(
    h(
      'nav',
      { class: 'nav', 'aria-label': 'Main' },
      h('a', { href: '/', class: 'brand' }, 'Phirepass'),
      h(
        'ul',
        {},
        links.map(([href, text]) =>
          h('li', {}, h('a', { href, 'aria-current': (href === '/' ? path === '/' || path.startsWith('/nodes/') : path.startsWith(href)) ? 'page' : undefined }, text)),
        ),
      ),
      user &&
        h(
          'div',
          { class: 'who' },
          h('span', { 'data-testid': 'whoami' }, user.username),
          h(
            'button',
            {
              type: 'button',
              class: 'secondary',
              onclick: async () => {
                await api('POST', '/api/auth/logout').catch(() => undefined);
                location.href = '/login';
              },
            },
            'Sign out',
          ),
        ),
    ),
  );
}

async function route() {
  const path = location.pathname;
  const open: Record<string, (main: HTMLElement) => void | Promise<void>> = { '/login': loginPage, '/setup': setupPage };
  if (open[path]) {
    header(null);
    return open[path](main);
  }
  if (path.startsWith('/join/')) {
    header(null);
    return joinPage(main);
  }
  const user = await me();
  if (!user) return toLogin();
  header(user);
  if (path === '/') return nodesPage(main, user);
  const node = /^\/nodes\/([^/]+)$/.exec(path);
  if (node) return nodePage(main, decodeURIComponent(node[1]));
  if (path === '/admin') return adminPage(main, user);
  if (path === '/activate') return activatePage(main, user);
  main.replaceChildren(h('h1', {}, 'Not found'), h('p', {}, h('a', { href: '/' }, 'Back to your nodes')));
}

route().catch((e) => {
  const text = e instanceof ApiError ? e.message : String(e);
  main.replaceChildren(h('h1', {}, 'Something went wrong'), h('p', { role: 'alert' }, text));
});
