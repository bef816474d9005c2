// The console's one script (the Content-Security-Policy admits no inline
// script).

// A command's progress on the lamp and cabinet pages: the server pushes the
// command at each change of a target's state (console/commands.rs); each
// step a target takes is written after the last, with the failure's
// reason. A page whose values are not live (a cabinet's) reloads once the
// command is done, to show what the devices read back.
"use strict";
(function () {
  const box = document.getElementById("command");
  const url = box && box.dataset.follow;
  if (!url || !window.EventSource) return;
  const source = new EventSource(url);
  source.addEventListener("progress", function (ev) {
    const c = JSON.parse(ev.data);
    box.querySelector(".status").textContent = c.status;
    for (const t of c.targets) {
      const li = box.querySelector('li[data-target="' + CSS.escape(t.id) + '"]');
      if (!li) continue;
      if (li.dataset.state !== t.state) {
        li.dataset.state = t.state;
        const step = document.createElement("span");
        step.className = "state";
        step.dataset.state = t.state;
        step.textContent = t.label;
        const steps = li.querySelector(".steps");
        steps.append(" → ", step);
      }
      li.querySelector(".reason").textContent = t.reason ? " — " + t.reason : "";
    }
    if (c.done) {
      // The server ends the stream here; the browser must not reconnect.
      source.close();
      box.dataset.done = "true";
      if (box.dataset.reload) window.location.reload();
    }
  });
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

// A history chart's span links swap its picture instead of leaving the page.
(function () {
  for (const section of document.querySelectorAll("section.history")) {
    const img = section.querySelector("img.history");
    if (!img) continue;
    const links = section.querySelectorAll("a.span-link");
    for (const a of links) {
      a.addEventListener("click", function (ev) {
        ev.preventDefault();
        img.src = img.dataset.chart + "?span=" + encodeURIComponent(a.dataset.span);
        for (const b of links) b.classList.toggle("current", b === a);
      });
    }
  }
})();
