// CSV exports from the reports page: POST /api/v1/exports/, then poll the job until it is done
// and offer its download link. One export at a time (a 409 shows the running one).
(function () {
  "use strict";
  const status = document.getElementById("export-status");
  if (!status) return;
  const bar = document.getElementById("export-progress");
  const text = document.getElementById("export-text");
  const link = document.getElementById("export-download");
  const csrf = document.querySelector('meta[name="csrf-token"]').content;
  let timer = null;

  function filters() {
    const f = {};
    for (const key of ["from", "to", "channel", "team"]) {
      const value = status.dataset[key];
      if (value) f[{ from: "from_date", to: "to_date" }[key] || key] = value;
    }
    return f;
  }

  function show(job) {
    const progress = job.progress || {};
    bar.hidden = false;
    if (progress.total) {
      bar.max = progress.total;
      bar.value = progress.rows || 0;
    } else {
      bar.removeAttribute("value");
    }
    if (job.state === "done") {
      bar.max = 1;
      bar.value = 1;
      text.textContent = `Export ready: ${job.result.rows} rows.`;
      link.href = job.download_url;
      link.setAttribute("download", job.result.filename || "export.csv");
      link.hidden = false;
    } else if (job.state === "failed") {
      text.textContent = `Export failed: ${job.error}`;
    } else {
      text.textContent = `Exporting… ${progress.rows || 0}${progress.total ? " of " + progress.total : ""} rows`;
      timer = setTimeout(() => poll(job.status_url), 500);
    }
  }

  async function poll(url) {
    const response = await fetch(url, { credentials: "same-origin" });
    if (response.ok) show(await response.json());
    else text.textContent = `Export status unavailable (${response.status}).`;
  }

  async function start(body) {
    clearTimeout(timer);
    link.hidden = true;
    text.textContent = "Starting the export…";
    const response = await fetch("/api/v1/exports/", {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRFToken": csrf },
      body: JSON.stringify(body),
    });
    const data = await response.json();
    if (response.status === 202) show(data);
    else if (response.status === 409) {
      text.textContent = data.detail;
      show(data.job);
    } else text.textContent = `Export refused: ${JSON.stringify(data)}`;
  }

  for (const button of document.querySelectorAll(".export-button")) {
    button.addEventListener("click", () => start({ report: button.dataset.report, ...filters() }));
  }
  const form = document.getElementById("export-conversations");
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const f = filters();
    const conversations = {};
    if (f.channel) conversations.channel = f.channel;
    if (f.team) conversations.team = f.team;
    if (f.from_date) conversations.from_date = f.from_date;
    const state = form.elements.status.value;
    if (state) conversations.status = state;
    start({ conversations });
  });
})();
