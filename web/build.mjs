// Builds the browser UI into the directory given as the first argument (the committed copy lives
// in services/gateway-ws/assets, embedded in the gateway at compile time). Deterministic: the same
// sources and package-lock.json give the same bytes, which `./check` relies on.
import { build } from 'esbuild';
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const out = process.argv[2];
if (!out) {
  console.error('usage: node build.mjs <output directory>');
  process.exit(2);
}
mkdirSync(out, { recursive: true });

await build({
  entryPoints: { app: 'src/app.ts', terminal: 'src/terminal.ts' },
  bundle: true,
  minify: true,
  format: 'iife',
  target: ['chrome110', 'firefox110', 'safari16'],
  outdir: out,
  legalComments: 'none',
  logLevel: 'warning',
});

// One stylesheet per page shell; xterm's own CSS goes first so ours can adjust it, and the
// terminal's font faces come with the terminal's sheet.
const appCss = readFileSync('src/app.css', 'utf8');
const xtermCss = readFileSync('node_modules/@xterm/xterm/css/xterm.css', 'utf8');
const fontsCss = readFileSync('src/fonts.css', 'utf8');
writeFileSync(join(out, 'app.css'), appCss);
writeFileSync(join(out, 'terminal.css'), xtermCss + '\n' + fontsCss + '\n' + appCss);
copyFileSync('src/index.html', join(out, 'index.html'));
copyFileSync('src/terminal.html', join(out, 'terminal.html'));
copyFileSync('src/favicon.svg', join(out, 'favicon.svg'));

// The terminal font's files, and its licence (the OFL asks that it travel with the font).
const fonts = 'node_modules/@fontsource/jetbrains-mono';
for (const subset of ['latin', 'latin-ext']) {
  for (const weight of [400, 700]) {
    copyFileSync(`${fonts}/files/jetbrains-mono-${subset}-${weight}-normal.woff2`, join(out, `jetbrains-mono-${subset}-${weight}.woff2`));
  }
}
copyFileSync(`${fonts}/LICENSE`, join(out, 'jetbrains-mono-LICENSE.txt'));
