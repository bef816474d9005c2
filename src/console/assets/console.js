// The console's one script (the Content-Security-Policy admits no inline
// script): follows a command's progress on the lamp page, then reloads the
// page to show the lamp's values after it.
"use strict";
(function () {
  const box = document.getElementById("command");
  const url = box && box.dataset.follow;
  if (!url) return;
  const tick = async function () {
    let c;
    try {
      const res = await fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } });
      if (!res.ok) return;
      c = await res.json();
    } catch (e) {
      setTimeout(tick, 2000);
      return;
    }
    box.querySelector(".status").textContent = c.status;
    for (const t of c.targets) {
      const li = box.querySelector('li[data-target="' + CSS.escape(t.id) + '"]');
      if (li) {
        li.dataset.state = t.state;
        li.querySelector(".state").textContent = t.label;
      }
    }
    if (c.done) {
      // The values the lamp read back after the command.
      window.location.reload();
    } else {
      setTimeout(tick, 500);
    }
  };
  setTimeout(tick, 300);
})();

// Live values: the overview's figures and alarm counts, a lamp's readings.
// The server sends one `update` event a second at most (a shared frame,
// console/live.rs); the browser reconnects by itself when a stream ends.
(function () {
  const overview = document.getElementById("at");
  const values = document.getElementById("values");
  const el = (overview && overview.dataset.live) ? overview : values;
  const url = el && el.dataset.live;
  if (!url || !window.EventSource) return;
  const source = new EventSource(url);
  source.addEventListener("update", function (ev) {
    const data = JSON.parse(ev.data);
    if (el === overview) {
      overview.textContent = data.at;
      for (const sc of data.scopes) {
        const box = document.querySelector('section.scope[data-scope="' + CSS.escape(sc.scope) + '"]');
        if (!box) continue;
        for (const key of Object.keys(sc.figures)) {
          const f = sc.figures[key];
          const card = box.querySelector('.figure[data-figure="' + key + '"]');
          if (!card) continue;
          card.dataset.value = f.raw;
          card.dataset.verdict = f.verdict;
          card.querySelector(".value").textContent = f.text;
        }
        for (const sev of Object.keys(sc.alarms)) {
          const badge = box.querySelector('.badge[data-severity="' + sev + '"]');
          if (!badge) continue;
          badge.dataset.count = sc.alarms[sev];
          badge.querySelector(".n").textContent = sc.alarms[sev];
        }
      }
      document.body.dataset.liveUpdates = String(Number(document.body.dataset.liveUpdates || 0) + 1);
    } else {
      for (const key of Object.keys(data)) {
        const dd = values.querySelector('dd[data-field="' + key + '"]');
        if (dd) dd.textContent = data[key];
      }
      document.body.dataset.liveUpdates = String(Number(document.body.dataset.liveUpdates || 0) + 1);
    }
  });
})();

// The history chart's span links swap the picture instead of leaving the page.
(function () {
  const img = document.getElementById("history");
  if (!img) return;
  for (const a of document.querySelectorAll("a.span-link")) {
    a.addEventListener("click", function (ev) {
      ev.preventDefault();
      img.src = a.getAttribute("href");
      for (const b of document.querySelectorAll("a.span-link")) b.classList.toggle("current", b === a);
    });
  }
})();
