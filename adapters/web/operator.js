// The operator view refreshes itself: every few seconds it fetches its own URL and swaps #live.
"use strict";

const refreshMs = 5000;

function stamp(text) {
  const label = document.getElementById("refreshed");
  if (label) label.textContent = text;
}

async function refresh() {
  if (document.hidden) return;
  try {
    const response = await fetch(location.href, { headers: { Accept: "text/html" } });
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    const page = new DOMParser().parseFromString(await response.text(), "text/html");
    const fresh = page.getElementById("live");
    const live = document.getElementById("live");
    if (fresh && live && fresh.innerHTML !== live.innerHTML) live.replaceWith(fresh);
    const count = page.querySelector("h2 .count");
    const shown = document.querySelector("h2 .count");
    if (count && shown) shown.textContent = count.textContent;
    stamp(`Updated ${new Date().toLocaleTimeString()}`);
  } catch (error) {
    stamp(`Not updated: ${error.message}`);
  }
}

stamp(`Updated ${new Date().toLocaleTimeString()}`);
setInterval(refresh, refreshMs);
document.addEventListener("visibilitychange", refresh);
