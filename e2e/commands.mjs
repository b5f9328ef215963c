// A node's page (`/nodes/<name>`), reached from the nodes list: the agent's self-report (version,
// uptime, last heartbeat) and the Commands panel: the declared commands, a form built from the
// parameter types (labelled controls, a required one refused empty in the page), a run whose
// output shows while the command still runs, then its exit code and duration; values out of
// range or against the declared pattern are refused in the page, and a non-zero exit reads
// "failed" with its code. The command is picked and run from the keyboard.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { context, env, login, shot, withBrowser } from './lib.mjs';

test('node page: status and commands panel', async () => {
  await withBrowser('commands', async (browser) => {
    const node = env('NODE');
    const command = env('COMMAND');
    const ctx = await context(browser);
    const page = await ctx.newPage();
    await login(page, env('USER_NAME'), env('USER_PASSWORD'));

    // From the list to the node's page.
    const row = page.locator(`tr[data-node="${node}"]`);
    await row.getByText('online', { exact: true }).waitFor({ timeout: 30000 });
    await row.getByRole('link', { name: node, exact: true }).click();
    await page.waitForURL(`**/nodes/${node}`);
    await page.getByRole('heading', { level: 1, name: node }).waitFor();

    // The agent's self-report.
    const status = page.getByTestId('node-status');
    await status.locator('[data-field="Status"]').getByText('online', { exact: true }).waitFor();
    await status.locator('[data-field="Agent version"]').getByText(env('AGENT_VERSION'), { exact: true }).waitFor();
    assert.match(await status.locator('[data-field="Agent uptime"]').innerText(), /\d+ (min|h|d)/);
    assert.match(await status.locator('[data-field="Last heartbeat"]').innerText(), /ago$/);

    // The declared commands, and the form of one of them.
    const panel = page.getByRole('region', { name: 'Commands' });
    const pick = panel.getByRole('button', { name: command, exact: true });
    await pick.focus();
    await page.keyboard.press('Enter');
    assert.equal(await pick.getAttribute('aria-pressed'), 'true');
    const form = panel.getByRole('form', { name: `Run ${command}` });
    const message = form.getByLabel(/^message/);
    const mode = form.getByLabel(/^mode/);
    assert.equal(await message.getAttribute('type'), 'text');
    assert.equal(await mode.evaluate((el) => el.tagName), 'SELECT');
    assert.deepEqual(await mode.locator('option').allTextContents(), ['plain', 'loud']);
    const code = form.getByLabel(/^code/);
    assert.equal(await code.getAttribute('type'), 'number');
    assert.equal(await code.getAttribute('max'), '3');
    assert.equal(await code.inputValue(), '0', 'the default is filled in');
    assert.equal(await form.getByLabel(/^token/).getAttribute('type'), 'password');
    await shot(page, 'commands-form');

    // Required and empty: refused in the page, nothing sent.
    await form.getByRole('button', { name: 'Run' }).click();
    await form.getByText('Enter message.').waitFor();
    assert.equal(await message.getAttribute('aria-invalid'), 'true');

    // A run: the first line shows while the command still runs, then the result.
    await message.fill('hello-from-chromium');
    await mode.selectOption('loud');
    await message.press('Enter');
    const output = form.getByTestId('command-output');
    const result = form.getByTestId('command-result');
    await output.getByText('working', { exact: false }).waitFor();
    assert.doesNotMatch(await result.innerText(), /Exit code/, 'output was shown only after the end');
    await result.getByText(/Exit code 0 · \d+ ms/).waitFor({ timeout: 20000 });
    assert.match(await output.innerText(), /HELLO-FROM-CHROMIUM/);
    await result.getByText('succeeded', { exact: true }).waitFor();
    await shot(page, 'commands-run');

    // Values the page refuses before sending (out of range, against the pattern), then a
    // command that exits non-zero: "failed" with its exit code.
    await code.fill('7');
    await form.getByRole('button', { name: 'Run' }).click();
    await form.getByText('code is at most 3.').waitFor();
    await code.fill('3');
    await message.fill('$(id)');
    await form.getByRole('button', { name: 'Run' }).click();
    await form.getByText(/^message must match /).waitFor();
    await message.fill('bye');
    await form.getByRole('button', { name: 'Run' }).click();
    await result.getByText(/Exit code 3 · \d+ ms/).waitFor({ timeout: 20000 });
    await result.getByText('failed', { exact: true }).waitFor();
    await shot(page, 'commands-failed');
  });
});
