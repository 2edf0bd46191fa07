// The activity page polls its own rows; everything else works without script.
(function () {
  "use strict";
  var body = document.querySelector("[data-poll]");
  if (!body) { return; }
  function refresh() {
    fetch(body.getAttribute("data-poll"), { credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.text() : null; })
      .then(function (html) { if (html !== null) { body.innerHTML = html; } })
      .catch(function () { /* try again at the next tick */ });
  }
  setInterval(refresh, 3000);
})();
