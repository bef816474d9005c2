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
