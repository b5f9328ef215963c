// The main page's "Your tunnels" and a node's "Open port…": bob's `ssh -R` tunnel is listed
// online with its public link (opened in a new tab, it shows the tunnel's site), and the open-port
// control offers the ports the agent allows (or says how to allow one), refuses any other with a
// page that names the fix, and leads through /api/apps/open and the app host's callback to the
// app the agent serves on an allowed port.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BASE, context, env, login, shot, withBrowser } from './lib.mjs';

test('your tunnels, open port', async () => {
  await withBrowser('tunnels', async (browser) => {
    const port = new URL(BASE()).port;
    const name = env('TUNNEL_NAME');
    const node = env('NODE');
    const ctx = await context(browser);
    const page = await ctx.newPage();
    await login(page, env('USER_NAME'), env('USER_PASSWORD'));

    const section = page.getByRole('region', { name: 'Your tunnels' });
    const row = section.locator(`tr[data-tunnel="${name}"]`);
    await row.getByText('online', { exact: true }).waitFor({ timeout: 30000 });
    const link = row.getByRole('link');
    const url = `http://${name}.tunnel.localhost:${port}/`;
    assert.equal(await link.getAttribute('href'), url);
    assert.equal(await link.textContent(), url);
    assert.equal(await link.getAttribute('target'), '_blank');
    assert.match(await link.getAttribute('rel'), /\bnoopener\b/);
    await shot(page, '6-tunnels');
    const [site] = await Promise.all([ctx.waitForEvent('page'), link.click()]);
    await site.waitForLoadState();
    assert.equal(site.url(), url);
    assert.equal((await site.locator('body').innerText()).trim(), env('TUNNEL_TEXT'));
    await site.close();

    // Open port…: only the ports the agent allows are offered (issue #19 item 10).
    const card = page.locator(`tr[data-node="${node}"]`);
    await card.getByText('online', { exact: true }).waitFor();
    const input = card.getByLabel(`Port on ${node}`);
    const open = card.getByRole('button', { name: 'Open port…' });
    await input.waitFor();
    assert.deepEqual(await input.locator('option').allTextContents(), [env('APP_PORT')]);
    // A node whose agent allows none says how to allow one, and offers nothing to click.
    const none = page.locator(`tr[data-node="${env('NOSSH_NODE')}"]`);
    await none.getByTestId('no-ports').filter({ hasText: 'ALLOWED_PORTS=8080' }).waitFor();
    assert.equal(await none.getByRole('button', { name: 'Open port…' }).count(), 0);
    await shot(page, '6-open-port-allowed');

    // A port typed by hand that the agent does not allow: a page that says so, not a bare 502.
    const refused = await ctx.newPage();
    const other = Number(env('APP_PORT')) === 1 ? 2 : 1;
    const answer = await refused.goto(`/api/apps/open?node=${node}&port=${other}`);
    assert.equal(answer.status(), 403);
    await refused.getByText(`node ${node} does not allow port ${other}; it allows ${env('APP_PORT')}`).waitFor();
    await refused.getByText(`ALLOWED_PORTS=${env('APP_PORT')},${other}`).waitFor();
    await shot(refused, '6-open-port-not-allowed');
    await refused.close();

    // An allowed port: the new tab goes /api/apps/open -> app host callback -> the app itself.
    await input.selectOption(env('APP_PORT'));
    const [app] = await Promise.all([ctx.waitForEvent('page'), open.click()]);
    await app.waitForURL(`http://${env('APP_PORT')}-${node}.apps.localhost:${port}/`);
    assert.equal((await app.locator('body').innerText()).trim(), env('APP_TEXT'));
    await shot(app, '6-app-port');

    // Phone width: the section and the control are still there and usable.
    await page.setViewportSize({ width: 375, height: 740 });
    await row.getByRole('link').waitFor();
    await input.waitFor();
    await none.getByTestId('no-ports').waitFor();
    await shot(page, '6-phone');
  });
});
