// Shared helpers for the browser suites: a headless Chromium (Debian's package, driven by
// playwright-core), settings from the environment the Rust harness sets, and screenshots.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { inflateSync } from 'node:zlib';
import { chromium } from 'playwright-core';

export function env(name) {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set (the Rust harness cli/tests/web_ui_e2e.rs sets it)`);
  return v;
}

export const BASE = () => env('PHIREPASS_URL');
const ARTIFACTS = process.env.E2E_ARTIFACTS ?? 'target/e2e-artifacts';
mkdirSync(ARTIFACTS, { recursive: true });

export async function launch() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
    headless: true,
    // CI runs as root in a container, where Chromium's sandbox cannot start.
    args: ['--no-sandbox', '--disable-dev-shm-usage'],
  });
}

export async function context(browser, viewport = { width: 1280, height: 720 }) {
  const ctx = await browser.newContext({ viewport, baseURL: BASE() });
  ctx.setDefaultTimeout(15000);
  return ctx;
}

/// The two widths every page is checked at: a desktop window and a phone (with its pixel ratio,
/// so glyphs are drawn at the density a phone draws them).
export const VIEWPORTS = {
  desktop: { viewport: { width: 1280, height: 720 } },
  phone: { viewport: { width: 390, height: 844 }, deviceScaleFactor: 3, isMobile: true, hasTouch: true },
};

/// A fresh context at one of VIEWPORTS.
export async function contextAt(browser, name) {
  const ctx = await browser.newContext({ ...VIEWPORTS[name], baseURL: BASE() });
  ctx.setDefaultTimeout(15000);
  return ctx;
}

/// Decodes a PNG screenshot (8-bit RGB or RGBA, not interlaced, as Chromium writes them) into
/// { width, height, channels, pixels }.
export function decodePng(buf) {
  let pos = 8;
  let width = 0;
  let height = 0;
  let channels = 0;
  const data = [];
  while (pos < buf.length) {
    const len = buf.readUInt32BE(pos);
    const type = buf.toString('ascii', pos + 4, pos + 8);
    const body = buf.subarray(pos + 8, pos + 8 + len);
    if (type === 'IHDR') {
      width = body.readUInt32BE(0);
      height = body.readUInt32BE(4);
      const [depth, color, , , interlace] = body.subarray(8, 13);
      if (depth !== 8 || interlace !== 0 || (color !== 2 && color !== 6)) throw new Error(`unsupported PNG (depth ${depth}, color ${color})`);
      channels = color === 6 ? 4 : 3;
    } else if (type === 'IDAT') {
      data.push(body);
    }
    pos += 12 + len;
  }
  const raw = inflateSync(Buffer.concat(data));
  const stride = width * channels;
  const pixels = Buffer.alloc(stride * height);
  for (let y = 0; y < height; y++) {
    const filter = raw[y * (stride + 1)];
    const line = raw.subarray(y * (stride + 1) + 1, (y + 1) * (stride + 1));
    for (let x = 0; x < stride; x++) {
      const a = x >= channels ? pixels[y * stride + x - channels] : 0;
      const b = y > 0 ? pixels[(y - 1) * stride + x] : 0;
      const c = x >= channels && y > 0 ? pixels[(y - 1) * stride + x - channels] : 0;
      let v = line[x];
      if (filter === 1) v += a;
      else if (filter === 2) v += b;
      else if (filter === 3) v += (a + b) >> 1;
      else if (filter === 4) {
        const p = a + b - c;
        const pa = Math.abs(p - a);
        const pb = Math.abs(p - b);
        const pc = Math.abs(p - c);
        v += pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
      }
      pixels[y * stride + x] = v & 0xff;
    }
  }
  return { width, height, channels, pixels };
}

/// How many pixels of a screenshot are bright (light text on the terminal's dark background).
export function brightPixels(png) {
  const { width, height, channels, pixels } = decodePng(png);
  let n = 0;
  for (let i = 0; i < width * height; i++) {
    const o = i * channels;
    if (pixels[o] + pixels[o + 1] + pixels[o + 2] > 3 * 128) n++;
  }
  return n;
}

export async function shot(page, name) {
  await page.screenshot({ path: join(ARTIFACTS, `${name}.png`), fullPage: true });
}

export async function login(page, username, password) {
  await page.goto('/login');
  await page.getByLabel('Username').fill(username);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Log in' }).click();
  await page.waitForURL((u) => u.pathname !== '/login');
}

/// The visible text of the xterm screen (DOM renderer rows).
export async function screenText(page) {
  return page.locator('.xterm-rows').innerText();
}

export async function waitForScreen(page, re, timeout = 15000) {
  const deadline = Date.now() + timeout;
  let text = '';
  while (Date.now() < deadline) {
    text = await screenText(page);
    if (re.test(text)) return text;
    await page.waitForTimeout(100);
  }
  throw new Error(`terminal never showed ${re}; screen was:\n${text}`);
}

/// Runs `fn` with a fresh browser; on failure a screenshot of every open page is kept.
export async function withBrowser(name, fn) {
  const browser = await launch();
  try {
    await fn(browser);
  } catch (e) {
    let i = 0;
    for (const ctx of browser.contexts()) {
      for (const page of ctx.pages()) {
        await shot(page, `${name}-failure-${i++}`).catch(() => {});
      }
    }
    throw e;
  } finally {
    await browser.close();
  }
}
