// Builds the graph page's assets into ../runtime/graphpage/assets, which the
// Go package embeds (so `go build` needs no npm): the page's own sources
// from src/ and uPlot's browser build and stylesheet from node_modules.
// Run with `npm ci && npm run build` after changing src/ or uPlot's version.
import { copyFileSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const out = join(here, "..", "runtime", "graphpage", "assets");
const uplot = join(here, "node_modules", "uplot");

rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });
for (const name of readdirSync(join(here, "src"))) {
  copyFileSync(join(here, "src", name), join(out, name));
}
const version = JSON.parse(readFileSync(join(uplot, "package.json"), "utf8")).version;
const license = readFileSync(join(uplot, "LICENSE"), "utf8").trim();
const banner = `/*! uPlot ${version} (MIT License)\n${license}\n*/\n`;
writeFileSync(join(out, "uPlot.iife.min.js"), banner + readFileSync(join(uplot, "dist", "uPlot.iife.min.js"), "utf8"));
writeFileSync(join(out, "uPlot.min.css"), banner + readFileSync(join(uplot, "dist", "uPlot.min.css"), "utf8"));
console.log(`built ${out} with uPlot ${version}`);
