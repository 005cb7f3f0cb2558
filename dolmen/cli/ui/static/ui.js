// Live updates without a framework: the list's counts and an execution's status are
// polled as JSON; a changed status reloads the page, so what it shows stays consistent.
"use strict";
(function () {
  const every = 2000;
  async function json(url) {
    const response = await fetch(url, { credentials: "same-origin" });
    if (!response.ok) throw new Error(response.status);
    return response.json();
  }
  const counts = document.getElementById("counts");
  if (counts) {
    setInterval(async () => {
      try {
        const data = await json(counts.dataset.url);
        for (const node of counts.querySelectorAll("[data-status]")) {
          const n = data[node.dataset.status];
          if (n !== undefined) node.textContent = String(n);
        }
      } catch (e) { /* the server restarts: try again next time */ }
    }, every);
  }
  const status = document.getElementById("status");
  if (status && status.dataset.status === "running") {
    const timer = setInterval(async () => {
      try {
        const data = await json(status.dataset.url);
        if (data.status !== status.dataset.status) {
          clearInterval(timer);
          window.location.reload();
        }
      } catch (e) { /* keep polling */ }
    }, every / 2);
  }
})();
