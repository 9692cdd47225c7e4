// The playground: start threads, chat, take over, resume, resolve. Polls the bridge for news.
"use strict";

const api = "/playground/api/threads";
const pollMs = 600;
const $ = (id) => document.getElementById(id);
const state = { threads: JSON.parse(localStorage.getItem("eb-threads") || "[]"), current: null,
  seen: 0, timer: null, busy: false };

async function call(method, url, body) {
  const response = await fetch(url, {
    method, headers: { "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const payload = await response.json();
  if (!response.ok) throw new Error(payload.error || response.statusText);
  return payload;
}

// crypto.randomUUID exists only in secure contexts (https, localhost).
function newId() {
  return crypto.randomUUID ? crypto.randomUUID()
    : `${Date.now().toString(36)}-${Math.random().toString(36).slice(2)}`;
}

function saveThreads() { localStorage.setItem("eb-threads", JSON.stringify(state.threads)); }

function renderThreadList() {
  const list = $("thread-list");
  list.replaceChildren(...state.threads.map((id, index) => {
    const item = document.createElement("li");
    const button = document.createElement("button");
    button.type = "button";
    button.textContent = `Thread ${index + 1} · ${id.slice(0, 6)}`;
    button.className = id === state.current ? "active" : "";
    button.addEventListener("click", () => openThread(id));
    item.append(button);
    return item;
  }));
}

function addEntry(entry) {
  $("empty").hidden = true;
  const bubble = document.createElement("div");
  bubble.className = `msg ${entry.role}`;
  bubble.dataset.role = entry.role;
  const who = document.createElement("span");
  who.className = "who";
  const names = { user: "You (customer)", staff: "You (staff)", notice: "bridge", local: "" };
  who.textContent = entry.role in names ? names[entry.role] : (entry.name || "agent");
  const body = document.createElement("span");
  body.className = "text";
  body.textContent = entry.text;
  if (who.textContent) bubble.append(who);
  bubble.append(body);
  $("log").append(bubble);
  $("log").scrollTop = $("log").scrollHeight;
}

function showState(info) {
  const badge = $("thread-state");
  const lifecycle = info.state || "new";
  badge.hidden = false;
  badge.textContent = lifecycle;
  badge.className = `badge ${lifecycle}`;
  badge.dataset.state = lifecycle;
  const meta = $("thread-meta");
  if (info.conversation_id && !meta.dataset.conversation) {
    meta.dataset.conversation = info.conversation_id;
    const link = document.createElement("a");
    link.href = `/operator/threads/${encodeURIComponent(info.thread)}`;
    link.textContent = `conversation ${info.conversation_id}`;
    meta.replaceChildren(link, ` · ${info.agent || ""}`);
  } else if (!info.conversation_id) {
    delete meta.dataset.conversation;
    meta.replaceChildren();
  }
  $("status-line").textContent = info.status_line || "";
  const known = Boolean(info.conversation_id);
  $("handoff").disabled = !known || lifecycle === "human";
  $("resume").disabled = !known || lifecycle === "bot";
  $("resolve").disabled = !known || lifecycle === "resolved";
}

async function poll() {
  if (!state.current) return;
  const id = state.current;
  try {
    const info = await call("GET", `${api}/${id}?after=${state.seen}`);
    if (id !== state.current) return;
    for (const entry of info.entries) {
      if (entry.seq > state.seen) { addEntry(entry); state.seen = entry.seq; }
    }
    showState(info);
  } catch (error) {
    $("status-line").textContent = `connection problem: ${error.message}`;
  }
}

function openThread(id) {
  state.current = id;
  state.seen = 0;
  delete $("thread-meta").dataset.conversation;
  $("thread-meta").replaceChildren();
  $("log").replaceChildren($("empty"));
  $("empty").hidden = false;
  $("thread-title").textContent = `Thread ${state.threads.indexOf(id) + 1}`;
  for (const control of ["text", "send-user", "send-staff"]) $(control).disabled = false;
  renderThreadList();
  clearInterval(state.timer);
  state.timer = setInterval(poll, pollMs);
  poll();
  $("text").focus();
}

async function newThread() {
  const created = await call("POST", api, {});
  state.threads.push(created.id);
  saveThreads();
  openThread(created.id);
}

async function send(as) {
  const text = $("text").value.trim();
  if (!text || !state.current || state.busy) return;
  state.busy = true;
  try {
    await call("POST", `${api}/${state.current}/messages`,
      { text, as, client_id: newId() });
    $("text").value = "";
    await poll();
  } catch (error) {
    $("status-line").textContent = `not sent: ${error.message}`;
  } finally {
    state.busy = false;
  }
}

async function command(name) {
  if (!state.current) return;
  try {
    await call("POST", `${api}/${state.current}/commands`,
      { command: name, client_id: newId() });
    await poll();
  } catch (error) {
    $("status-line").textContent = `${name} failed: ${error.message}`;
  }
}

$("new-thread").addEventListener("click", newThread);
$("composer").addEventListener("submit", (event) => { event.preventDefault(); send("user"); });
$("send-staff").addEventListener("click", () => send("staff"));
for (const name of ["handoff", "resume", "resolve"]) {
  $(name).addEventListener("click", () => command(name));
}
renderThreadList();
if (state.threads.length) openThread(state.threads[state.threads.length - 1]);
