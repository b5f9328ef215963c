// Issue #9 findings 1 and 2 and session fixation, in Chromium. The dashboard, the victim's app
// host and the attacker's tunnel share one site (pp.localhost), as phirepass.example.com,
// apps.example.com and tunnel.example.com do in production. The attacker's tunnel page tosses
// cookies at the dashboard and the app host (by script and by its upstream's Set-Cookie), and
// sends the victim's app a credentialed POST and a WebSocket. The Rust side (cli/tests/web/
// cross_site.rs) counts what reached the app; this side checks what the browser kept and that
// the victim's approval of her agent's code acts as her.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BASE, context, env, login, shot, withBrowser } from './lib.mjs';

const SITE = 'pp.localhost';

test('sibling hosts cannot ride or toss the victim\'s cookies', async () => {
  await withBrowser('cross-site', async (browser) => {
    const ctx = await context(browser);
    const dashboardHost = new URL(BASE()).hostname;
    const appUrl = env('APP_URL');
    const appHost = new URL(appUrl).hostname;

    // Session fixation: a session cookie planted before login (by a script that ran on the
    // dashboard once, or someone at the keyboard) is not the session after it.
    const page = await ctx.newPage();
    await page.goto('/login');
    await page.evaluate(() => { document.cookie = '__Host-pp_session=fixated-by-the-attacker; Secure; Path=/; SameSite=Strict'; });
    assert.deepEqual((await ctx.cookies(BASE())).map((c) => c.value), ['fixated-by-the-attacker']);
    await login(page, env('VICTIM_USER'), env('VICTIM_PASSWORD'));
    const sessions = (await ctx.cookies(BASE())).filter((c) => c.name.endsWith('pp_session'));
    assert.equal(sessions.length, 1, JSON.stringify(sessions));
    const [session] = sessions;
    // Chromium takes the __Host- cookie over http on a *.localhost name (a secure context).
    assert.equal(session.name, '__Host-pp_session');
    assert.notEqual(session.value, 'fixated-by-the-attacker');
    assert.equal(session.domain, dashboardHost);
    assert.equal(session.secure, true);

    // The victim opens her app: the app host's own __Host- cookie.
    const app = await ctx.newPage();
    await app.goto(`/api/apps/open?node=${env('VICTIM_NODE')}&port=${env('APP_PORT')}`);
    await app.waitForURL(`${appUrl}/`);
    await app.getByText('victim app').waitFor();
    const appCookies = await ctx.cookies(appUrl);
    assert.deepEqual(appCookies.map((c) => [c.name, c.domain, c.secure]), [['__Host-phirepass_app', appHost, true]]);
    // Her app's own pages may POST and open WebSockets (the control: one of each).
    const own = await app.evaluate(async () => {
      const post = (await fetch('/post', { method: 'POST', body: 'mine' })).status;
      const ws = await new Promise((resolve) => {
        const s = new WebSocket(`ws://${location.host}/ws`);
        s.onopen = () => { s.close(); resolve('open'); };
        s.onerror = () => resolve('error');
      });
      return { post, ws };
    });
    assert.deepEqual(own, { post: 200, ws: 'open' });
    await shot(app, 'cross-site-app');

    // The attacker's tunnel page, same site as both.
    const evil = await ctx.newPage();
    await evil.goto(env('EVIL_URL'));
    await evil.getByText('nothing to see').waitFor();
    const attack = await evil.evaluate(async ({ site, appUrl, token }) => {
      // Script-tossed cookies: the gateway never sees these, only the names protect.
      document.cookie = `pp_session=${token}; domain=${site}; path=/api/device`;
      document.cookie = `__Host-pp_session=${token}; domain=${site}; path=/`;
      document.cookie = `__phirepass_app=${token}; domain=${site}; path=/`;
      const post = await fetch(`${appUrl}/post`, { method: 'POST', credentials: 'include', mode: 'no-cors', body: 'stolen' })
        .then(() => 'sent', (e) => `failed: ${e}`);
      const ws = await new Promise((resolve) => {
        const s = new WebSocket(`${appUrl.replace('http', 'ws')}/ws`);
        s.onopen = () => { s.close(); resolve('open'); };
        s.onerror = () => resolve('refused');
        setTimeout(() => resolve('timeout'), 10000);
      });
      return { post, ws };
    }, { site: SITE, appUrl, token: env('ATTACKER_TOKEN') });
    assert.deepEqual(attack, { post: 'sent', ws: 'refused' });
    await shot(evil, 'cross-site-evil');

    // What the browser kept: the script's plain pp_session on the whole site (the browser allows
    // it), no __Host- copy anywhere but the dashboard and the app, and from the upstream's
    // Set-Cookie only its own host-only cookies.
    const all = await ctx.cookies();
    const seen = all.map((c) => `${c.name}@${c.domain}`).sort();
    assert.ok(seen.includes(`pp_session@.${SITE}`), seen.join(' '));
    assert.ok(seen.includes(`theirs@${new URL(env('EVIL_URL')).hostname}`), seen.join(' '));
    assert.ok(seen.includes(`tossed@${new URL(env('EVIL_URL')).hostname}`), seen.join(' '));
    for (const c of all) {
      if (c.name === '__Host-pp_session') assert.equal(c.domain, dashboardHost);
      if (c.name === '__Host-phirepass_app') assert.equal(c.domain, appHost);
      assert.ok(!c.value.includes('planted'), `the upstream planted ${c.name}@${c.domain}`);
      assert.notEqual(c.name, 'raw');
    }

    // The victim approves her agent's code on the dashboard, the tossed cookie riding along on
    // /api/device: the approval is hers.
    await page.goto('/');
    const approval = await page.evaluate(async (code) => {
      const headers = { 'content-type': 'application/json', 'x-phirepass': '1' };
      const call = async (path, body) => {
        const r = await fetch(path, { method: 'POST', headers, body: JSON.stringify(body) });
        return { status: r.status, body: await r.json() };
      };
      const review = await call('/api/device/inspect', { user_code: code, node_name: 'victim-box' });
      const approved = await call('/api/device/approve', { user_code: code, node_name: 'victim-box', device_id: review.body.device_id });
      return { review: review.status, approved };
    }, env('USER_CODE'));
    assert.equal(approval.review, 200, JSON.stringify(approval));
    assert.equal(approval.approved.status, 200, JSON.stringify(approval));
    assert.equal(approval.approved.body.node.username, env('VICTIM_USER'), JSON.stringify(approval));
    await shot(page, 'cross-site-dashboard');
  });
});
