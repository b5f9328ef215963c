// Issue #19, items 6, 9 and the terminal's header: at desktop and phone size,
// - a node that cannot give a shell is reported before anyone types a password: an unknown node
//   (no Reconnect, which could not help, but a way back), an offline node, a node whose agent
//   finds no sshd; the password dialog never opens for them;
// - a reachable node asks only after the gateway checked it; a wrong password leaves the header
//   saying a password is needed, not "Logging in…";
// - underscores are drawn: a row of `_` has ink (Debian's default monospace at 14px put them
//   below the cell, so `x86_64` read `x86 64`).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { brightPixels, contextAt, env, login, shot, waitForScreen, withBrowser } from './lib.mjs';

/// Records whether the page ever opened the password dialog.
const watchDialog = () => {
  const open = HTMLDialogElement.prototype.showModal;
  HTMLDialogElement.prototype.showModal = function () {
    window.__askedPassword = true;
    return open.call(this);
  };
};

async function refusedBeforeAsking(page, node, text, { permanent }) {
  await page.goto(`/terminal/${encodeURIComponent(node)}`);
  const notice = page.locator('#term-notice');
  await notice.filter({ hasText: text }).waitFor({ timeout: 20000 });
  assert.equal(await page.evaluate(() => window.__askedPassword === true), false, `${node}: no password asked`);
  assert.equal(await page.getByRole('dialog').isVisible(), false);
  const status = (await page.locator('#term-status').textContent()).trim();
  assert.notEqual(status, 'Logging in…');
  assert.equal(status, permanent ? 'Not available' : 'Disconnected');
  assert.equal(await page.getByRole('button', { name: 'Reconnect' }).isVisible(), !permanent, `${node}: Reconnect offered only when it can help`);
  assert.equal(await page.getByRole('link', { name: 'Back to your nodes' }).isVisible(), permanent);
}

for (const size of ['desktop', 'phone']) {
  test(`terminal checks the node before asking (${size})`, async () => {
    await withBrowser(`terminal-checks-${size}`, async (browser) => {
      const ctx = await contextAt(browser, size);
      await ctx.addInitScript(watchDialog);
      const page = await ctx.newPage();
      await login(page, env('USER_NAME'), env('USER_PASSWORD'));

      await refusedBeforeAsking(page, 'no-such-node', 'unknown node "no-such-node"', { permanent: true });
      await shot(page, `19-9-unknown-node-${size}`);
      await refusedBeforeAsking(page, env('OFFLINE_NODE'), `node ${env('OFFLINE_NODE')} is offline`, { permanent: false });
      await shot(page, `19-9-offline-node-${size}`);
      await refusedBeforeAsking(page, env('NOSSH_NODE'), `node ${env('NOSSH_NODE')} has no SSH server answering`, { permanent: false });
      await shot(page, `19-9-no-sshd-${size}`);

      // A node that answers: the dialog comes after the check, and says so.
      await page.goto(`/terminal/${env('NODE')}`);
      const dialog = page.getByRole('dialog');
      await dialog.getByText(`${env('NODE')} is online and its SSH server answers`).waitFor({ timeout: 20000 });
      await dialog.getByLabel('Account on the node').fill(env('SSH_USER'));
      await dialog.getByLabel('Password').fill('not-the-password');
      await dialog.getByRole('button', { name: 'Connect' }).click();
      await dialog.getByText(/wrong password/).waitFor({ timeout: 20000 });
      assert.equal((await page.locator('#term-status').textContent()).trim(), 'Password needed');
      await shot(page, `19-12-wrong-password-header-${size}`);
      await dialog.getByLabel('Password').fill(env('SSH_PASSWORD'));
      await dialog.getByRole('button', { name: 'Connect' }).click();
      await page.locator('#term-status').filter({ hasText: 'Connected' }).waitFor({ timeout: 20000 });

      // Underscores have ink: a row of nothing but 32 of them is not blank.
      await page.keyboard.type("printf '_%.0s' $(seq 32); echo; echo x86_64");
      await page.keyboard.press('Enter');
      await waitForScreen(page, /^x86_64$/m);
      const row = page.locator('.xterm-rows > div').filter({ hasText: /^_{32}\s*$/ });
      const ink = brightPixels(await row.screenshot());
      await shot(page, `19-6-underscores-${size}`);
      assert.ok(ink >= 32, `a row of 32 underscores has ${ink} bright pixels: the glyphs are clipped`);
      await ctx.close();
    });
  });
}
