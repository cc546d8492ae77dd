// The dashboard's only script (beside the vendored htmx and uPlot): charts, bar sizes,
// confirmations, and the CSRF header on htmx's requests.
// Charts for Assay's pages. Each <figure class="chart"> holds its data as JSON in a
// <script type="application/json"> element (escaped server-side); this draws it:
// "steps" -> line charts with uPlot; "parallel" -> parallel coordinates in SVG;
// "bands" -> lines with confidence bands. Drawn again when htmx swaps content in.
(function () {
  "use strict";
  const COLORS = ["#2563eb", "#dc2626", "#059669", "#d97706", "#7c3aed", "#0891b2", "#db2777", "#65a30d"];

  function readData(fig) {
    const el = fig.querySelector('script[type="application/json"]');
    return el ? JSON.parse(el.textContent) : null;
  }

  function stepsChart(fig, data) {
    // data: {title, series: {label: [[x, y], ...]}, xLabel?, time?} (time: x is Unix seconds)
    const labels = Object.keys(data.series);
    const xs = Array.from(new Set(labels.flatMap((l) => data.series[l].map((p) => p[0])))).sort((a, b) => a - b);
    const index = new Map(xs.map((x, i) => [x, i]));
    const columns = [xs];
    for (const label of labels) {
      const ys = new Array(xs.length).fill(null);
      for (const [x, y] of data.series[label]) ys[index.get(x)] = y;
      columns.push(ys);
    }
    const series = [{ label: data.xLabel || "step" }].concat(
      labels.map((label, i) => ({ label: label, stroke: COLORS[i % COLORS.length], width: 2, spanGaps: true, points: { show: xs.length < 60 } })),
    );
    const opts = { title: data.title, width: Math.max(420, Math.min(720, fig.parentElement.clientWidth - 20)), height: 260, series: series, scales: { x: { time: !!data.time } } };
    if (data.bands) opts.bands = data.bands;
    new uPlot(opts, columns, fig);
  }

  function bandsChart(fig, data) {
    // data: {title, x: [...], lines: [{label, y: [...], lo: [...], hi: [...]}]}
    const columns = [data.x];
    const series = [{ label: data.xLabel || "time" }];
    const bands = [];
    data.lines.forEach((line, i) => {
      const color = COLORS[i % COLORS.length];
      if (!line.lo || !line.hi) {  // no interval for this line: the line alone
        columns.push(line.y);
        series.push({ label: line.label, stroke: color, width: 2, spanGaps: true });
        return;
      }
      columns.push(line.hi, line.y, line.lo);
      const base = series.length;
      series.push({ label: line.label + " (hi)", stroke: color + "55", width: 1, spanGaps: true });
      series.push({ label: line.label, stroke: color, width: 2, spanGaps: true });
      series.push({ label: line.label + " (lo)", stroke: color + "55", width: 1, spanGaps: true });
      bands.push({ series: [base, base + 2], fill: color + "22" });
    });
    const opts = { title: data.title, width: Math.max(420, Math.min(900, fig.parentElement.clientWidth - 20)), height: 280, series: series, bands: bands, scales: { x: { time: !!data.time } } };
    new uPlot(opts, columns, fig);
  }

  function parallelChart(fig, data) {
    // data: {axes: [names], lines: [{label, values: [...]}]}, the last axis coloured.
    const NS = "http://www.w3.org/2000/svg";
    const width = Math.max(480, fig.parentElement.clientWidth - 30), height = 300, pad = 40;
    const svg = document.createElementNS(NS, "svg");
    svg.setAttribute("width", width); svg.setAttribute("height", height + 30);
    svg.setAttribute("role", "img"); svg.setAttribute("aria-label", "parallel coordinates");
    const n = data.axes.length;
    const x = (i) => pad + (i * (width - 2 * pad)) / Math.max(1, n - 1);
    const ranges = data.axes.map((_, i) => {
      const vals = data.lines.map((l) => l.values[i]).filter((v) => typeof v === "number");
      const lo = Math.min(...vals), hi = Math.max(...vals);
      if (hi !== lo) return [lo, hi];
      const pad = Math.max(Math.abs(lo), 1) * 0.05;  // one value: a flat line mid-axis
      return [lo - pad, hi + pad];
    });
    const y = (i, v) => height - 10 - ((v - ranges[i][0]) / (ranges[i][1] - ranges[i][0])) * (height - 30);
    const last = n - 1;
    const colour = (v) => {
      if (typeof v !== "number") return "#9ca3af";
      const t = (v - ranges[last][0]) / (ranges[last][1] - ranges[last][0]);
      return `hsl(${Math.round(220 - 200 * t)}, 75%, 45%)`;
    };
    data.lines.forEach((line) => {
      const pts = line.values.map((v, i) => (typeof v === "number" ? `${x(i)},${y(i, v)}` : null)).filter(Boolean);
      const path = document.createElementNS(NS, "polyline");
      path.setAttribute("points", pts.join(" "));
      path.setAttribute("fill", "none");
      path.setAttribute("stroke", colour(line.values[last]));
      path.setAttribute("stroke-width", "1.5");
      path.setAttribute("opacity", "0.8");
      const title = document.createElementNS(NS, "title");
      title.textContent = line.label;
      path.appendChild(title);
      svg.appendChild(path);
    });
    data.axes.forEach((name, i) => {
      const axis = document.createElementNS(NS, "line");
      axis.setAttribute("x1", x(i)); axis.setAttribute("x2", x(i));
      axis.setAttribute("y1", 20); axis.setAttribute("y2", height - 10);
      axis.setAttribute("stroke", "#374151");
      svg.appendChild(axis);
      const label = document.createElementNS(NS, "text");
      label.setAttribute("x", x(i)); label.setAttribute("y", height + 12);
      label.setAttribute("text-anchor", "middle"); label.setAttribute("font-size", "12");
      label.textContent = name;
      svg.appendChild(label);
      for (const [v, yy] of [[ranges[i][1], 14], [ranges[i][0], height + 24]]) {
        const t = document.createElementNS(NS, "text");
        t.setAttribute("x", x(i)); t.setAttribute("y", yy);
        t.setAttribute("text-anchor", "middle"); t.setAttribute("font-size", "10"); t.setAttribute("fill", "#6b7280");
        t.textContent = Number.isFinite(v) ? +v.toPrecision(4) : "";
        svg.appendChild(t);
      }
    });
    fig.appendChild(svg);
  }

  function draw(root) {
    root.querySelectorAll("figure.chart:not([data-drawn])").forEach((fig) => {
      const data = readData(fig);
      if (!data) return;
      fig.setAttribute("data-drawn", "1");
      const kind = fig.dataset.kind;
      if (kind === "parallel") parallelChart(fig, data);
      else if (kind === "bands") bandsChart(fig, data);
      else stepsChart(fig, data);
    });
  }

  // Bars say their length as data-width / data-height (percent) and are sized here: the
  // Content-Security-Policy allows no inline style attributes.
  function size(root) {
    root.querySelectorAll("[data-width]").forEach((el) => { el.style.width = el.dataset.width + "%"; });
    root.querySelectorAll("[data-height]").forEach((el) => { el.style.height = el.dataset.height + "%"; });
  }

  document.addEventListener("DOMContentLoaded", () => { size(document); draw(document); });
  document.addEventListener("htmx:afterSwap", (e) => { size(e.target); draw(e.target); });

  // No inline handlers either: a form with data-confirm asks first, a data-back link goes back.
  document.addEventListener("submit", (e) => {
    const message = e.target.dataset && e.target.dataset.confirm;
    if (message && !window.confirm(message)) e.preventDefault();
  });
  document.addEventListener("click", (e) => {
    const link = e.target.closest && e.target.closest("a[data-back]");
    if (link && window.history.length > 1) { e.preventDefault(); window.history.back(); }
  });

  // htmx's requests carry the session's CSRF token as a header (forms carry it as a field).
  document.addEventListener("htmx:configRequest", (e) => {
    const meta = document.querySelector('meta[name="csrf-token"]');
    if (meta) e.detail.headers["X-CSRF-Token"] = meta.content;
  });
})();
