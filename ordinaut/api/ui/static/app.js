// The activity page follows the event stream (Server-Sent Events at /ui/events/stream, what
// the signed-in token may see): each event is listed as it happens and run events refresh
// the runs table. Without EventSource, or when the stream is refused, the table polls every
// 3 s; without script the page reloads itself (a <noscript> refresh). Everything else works
// without script.
(function () {
  "use strict";
  var body = document.querySelector("[data-poll]");
  var feed = document.querySelector("[data-stream]");
  var state = document.getElementById("feed-state");
  var KEEP = 50; // events listed at most (the page's memory stays bounded)
  var polling = null;
  var pending = null;

  function refresh() {
    if (!body) { return; }
    fetch(body.getAttribute("data-poll"), { credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.text() : null; })
      .then(function (html) { if (html !== null) { body.innerHTML = html; } })
      .catch(function () { /* try again at the next event or tick */ });
  }
  function poll() {
    if (body && polling === null) { polling = setInterval(refresh, 3000); }
  }
  function soon() { // several run events in a burst: one refresh
    if (pending === null) {
      pending = setTimeout(function () { pending = null; refresh(); }, 300);
    }
  }
  function text(tag, value, cls) {
    var el = document.createElement(tag);
    el.textContent = value;
    if (cls) { el.className = cls; }
    return el;
  }
  function show(entry) {
    var payload = entry.payload || {};
    var external = String(entry.topic).indexOf("event.external.") === 0;
    var body = external && payload.payload !== undefined ? payload.payload : payload;
    var item = document.createElement("li");
    item.className = "event";
    var at = new Date(entry.at);
    item.appendChild(text("time", isNaN(at) ? String(entry.at) : at.toLocaleTimeString()));
    item.appendChild(document.createTextNode(" "));
    item.appendChild(text("code", String(entry.topic), "topic"));
    var said = body && typeof body === "object"
      ? body.why || body.status || body.reason || body.error || "" : "";
    if (said) {
      item.appendChild(text("span", " " + String(said)));
    } else if (body !== null && body !== undefined && !payload.run_id) {
      item.appendChild(text("span", " " + JSON.stringify(body).slice(0, 160), "muted"));
    }
    if (payload.run_id || payload.task_id) { item.appendChild(document.createTextNode(" ")); }
    if (payload.run_id) {
      var link = text("a", "run");
      link.href = "/ui/runs/" + encodeURIComponent(String(payload.run_id));
      item.appendChild(link);
    } else if (payload.task_id) {
      var task = text("a", "task");
      task.href = "/ui/tasks/" + encodeURIComponent(String(payload.task_id));
      item.appendChild(task);
    }
    feed.insertBefore(item, feed.firstChild);
    while (feed.children.length > KEEP) { feed.removeChild(feed.lastChild); }
  }

  if (feed && typeof window.EventSource === "function") {
    var source = new EventSource(feed.getAttribute("data-stream"));
    feed.setAttribute("data-live", "connecting");
    source.onopen = function () {
      feed.setAttribute("data-live", "open");
      if (state) { state.textContent = "Live: events appear here as they happen."; }
      if (polling !== null) { clearInterval(polling); polling = null; }
    };
    source.onmessage = function (message) {
      var entry;
      try { entry = JSON.parse(message.data); } catch (e) { return; }
      show(entry);
      if (String(entry.topic).indexOf("task.run.") === 0) { soon(); }
    };
    source.onerror = function () {
      if (source.readyState === EventSource.CLOSED) { // refused (signed out, too many)
        feed.setAttribute("data-live", "closed");
        if (state) { state.textContent = "The live feed is unavailable; the runs below refresh every 3 seconds."; }
        poll();
      } // else the browser reconnects by itself, resuming after the last event id
    };
  } else {
    poll();
  }
})();
