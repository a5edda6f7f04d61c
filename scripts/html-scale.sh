#!/bin/sh
# html-scale.sh times the HTML report in headless Chromium: it writes reports of many
# findings (scaleReport in report/write_html_test.go) and, for each, prints the page's
# size, the time from navigation until the findings are shown, and the time to filter
# them by text and severity and to sort them.
#
# Usage: scripts/html-scale.sh [FINDINGS...]        (default: 24000 100000)
#        scripts/html-scale.sh --page FILE...         (time pages already written)
#
# It needs Node.js with playwright-core where node finds it (for instance NODE_PATH set to
# the node_modules of a directory where `npm install playwright-core` ran), and Chromium:
# CHROMIUM names its executable (default: chromium on PATH). Nothing is installed and
# no network is used: the pages are self-contained.
set -eu

cd "$(dirname "$0")/.."
chromium=${CHROMIUM:-$(command -v chromium || command -v chromium-browser || true)}
if [ -z "$chromium" ]; then
	echo "html-scale: no Chromium (set CHROMIUM)" >&2
	exit 2
fi
if ! node -e 'require("playwright-core")' 2>/dev/null; then
	echo "html-scale: node cannot load playwright-core (npm install it and set NODE_PATH)" >&2
	exit 2
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

pages=""
if [ "${1:-}" = "--page" ]; then
	shift
	pages="$*"
else
	for n in ${@:-24000 100000}; do
		go test ./report -run '^TestWriteHTMLScalePage$' -count=1 \
			-html-scale-page "$work/report-$n.html" -html-scale-findings "$n" >/dev/null
		pages="$pages $work/report-$n.html"
	done
fi

cat >"$work/time.js" <<'JS'
const { chromium } = require("playwright-core");
const fs = require("fs");
const path = require("path");

(async () => {
  const [executablePath, ...pages] = process.argv.slice(2);
  const browser = await chromium.launch({ executablePath, args: ["--no-sandbox", "--disable-gpu"] });
  try {
    for (const file of pages) {
      const page = await browser.newPage({ viewport: { width: 900, height: 2000 } });
      const started = Date.now();
      await page.goto("file://" + path.resolve(file), { waitUntil: "commit", timeout: 0 });
      // The script shows the controls once the findings are in the table.
      await page.waitForSelector("#controls:not([hidden])", { state: "attached", timeout: 0 });
      const ready = await page.evaluate(() => performance.now());
      const wall = Date.now() - started;
      const shown = await page.evaluate(() => document.querySelectorAll("#findings tbody tr").length);

      // The time from a change until the next frame is drawn.
      const timeIt = (change) => page.evaluate(async (change) => {
        const frame = () => new Promise((resolve) => requestAnimationFrame(() => resolve()));
        const text = document.getElementById("filter-text");
        const severity = document.getElementById("filter-severity");
        const form = document.getElementById("controls");
        const start = performance.now();
        if (change.text !== undefined) {
          text.value = change.text;
          text.dispatchEvent(new Event("input"));
          form.requestSubmit();
        }
        if (change.severity !== undefined) {
          severity.value = change.severity;
          severity.dispatchEvent(new Event("change"));
        }
        if (change.sort !== undefined) {
          document.querySelectorAll("#findings thead th")[change.sort].querySelector("button").click();
        }
        await frame();
        await frame();
        return {
          ms: Math.round(performance.now() - start),
          status: document.getElementById("shown").textContent,
        };
      }, change);

      const results = {
        page: path.basename(file),
        bytes: fs.statSync(file).size,
        readyMs: Math.round(ready),
        wallMs: wall,
        rows: shown,
        filterText: await timeIt({ text: "20.1.2" }),
        filterTextAgain: await timeIt({ text: "malicious" }),
        clearText: await timeIt({ text: "" }),
        filterSeverity: await timeIt({ severity: "high" }),
        allSeverities: await timeIt({ severity: "" }),
        sortByCIDR: await timeIt({ sort: 4 }),
      };
      console.log(JSON.stringify(results));
      await page.close();
    }
  } finally {
    await browser.close();
  }
})().catch((e) => {
  console.error(e);
  process.exit(1);
});
JS
# shellcheck disable=SC2086
node "$work/time.js" "$chromium" $pages
