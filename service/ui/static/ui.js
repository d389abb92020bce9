// sharpen dashboard: small progressive enhancement, no dependencies.
// While an experiment runs, poll its results fragment and swap it in place.
(function () {
  "use strict";
  function startPolling(region) {
    var url = region.getAttribute("data-refresh-url");
    var seconds = parseFloat(region.getAttribute("data-refresh-seconds") || "5");
    var status = document.getElementById("live-status");
    var timer = null;
    function stop() { if (timer !== null) { window.clearInterval(timer); timer = null; } }
    function refresh() {
      if (document.hidden) { return; }
      fetch(url, { credentials: "same-origin", headers: { "Accept": "text/html" } })
        .then(function (response) {
          if (response.redirected || response.status === 401) {
            stop(); window.location.reload(); return null;
          }
          if (!response.ok) { throw new Error("HTTP " + response.status); }
          return response.text();
        })
        .then(function (html) {
          if (html === null) { return; }
          var holder = document.createElement("div");
          holder.innerHTML = html;
          var fresh = holder.querySelector("#live");
          var current = region.querySelector("#live");
          if (!fresh || !current) { return; }
          var open = Array.prototype.map.call(
            current.querySelectorAll("details[open] summary"),
            function (s) { return s.textContent; });
          current.replaceWith(fresh);
          fresh.querySelectorAll("details summary").forEach(function (s) {
            if (open.indexOf(s.textContent) >= 0) { s.parentElement.open = true; }
          });
          if (status) {
            status.textContent = "Results updated at " + new Date().toLocaleTimeString() + ".";
          }
          if (fresh.getAttribute("data-status") !== "running") {
            stop();
            if (status) { status.textContent = "The experiment is no longer running."; }
          }
        })
        .catch(function (err) {
          if (status) { status.textContent = "Could not refresh the results (" + err.message + ")."; }
        });
    }
    timer = window.setInterval(refresh, Math.max(seconds, 1) * 1000);
  }
  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-refresh-url]").forEach(startPolling);
  });
})();
