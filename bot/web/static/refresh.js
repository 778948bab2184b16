// Swap in a fresh <main> once a minute instead of reloading the page: no flash, no lost
// scroll position. The server answers 304 when nothing changed. Without JavaScript, a
// <noscript> meta refresh does the same job with a full reload.
(function () {
  "use strict";
  var main = document.getElementById("main");
  if (!main || !main.dataset.refresh || !window.fetch) { return; }
  var seconds = Number(main.dataset.refreshSeconds) || 60;
  var last = null;
  function refresh() {
    if (document.hidden) { return; }
    fetch(main.dataset.refresh, { headers: { "Accept": "text/html" }, cache: "no-cache" })
      .then(function (response) { return response.ok ? response.text() : null; })
      .then(function (html) {
        if (html === null || html === last) { return; }
        last = html;
        // Keep keyboard users where they are: skip a swap while focus is inside the content.
        if (main.contains(document.activeElement) && document.activeElement !== main) { return; }
        main.innerHTML = html;
        main.dataset.refreshed = String(Number(main.dataset.refreshed || 0) + 1);
      })
      .catch(function () { /* offline for a moment: keep what is shown, try next time */ });
  }
  setInterval(refresh, seconds * 1000);
  document.addEventListener("visibilitychange", refresh);
}());
