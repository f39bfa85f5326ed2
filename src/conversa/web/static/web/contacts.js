// A contact import's page: polls its progress until it is done or failed, updating the bar and figures.
(function () {
  "use strict";
  const box = document.getElementById("import-progress");
  if (!box) return;
  const url = box.dataset.url;
  const finished = (status) => status === "done" || status === "failed";
  function show(data) {
    box.dataset.status = data.status;
    box.querySelector("progress").value = data.percent;
    for (const node of box.querySelectorAll("[data-field]")) {
      const value = data[node.dataset.field];
      if (value !== undefined) node.textContent = String(value);
    }
  }
  async function poll() {
    try {
      const response = await fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" });
      if (response.ok) {
        const data = await response.json();
        show(data);
        if (finished(data.status)) {
          if (data.status === "failed") window.location.reload();  // offers "run again"
          return;
        }
      }
    } catch (error) {
      // The server is restarting: try again on the next tick.
    }
    window.setTimeout(poll, 1000);
  }
  if (!finished(box.dataset.status)) window.setTimeout(poll, 500);
})();
