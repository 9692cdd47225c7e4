// The playground: start threads, pick the agent, chat, take over, resume, resolve. Polls for news.
"use strict";

const api = "/playground/api";
const pollMs = 500;
const $ = (id) => document.getElementById(id);
const state = { threads: loadThreads(), current: null, seen: 0, timer: null, busy: false,
  staff: true, known: false, agents: [], defaultAgent: "" };

class HttpError extends Error {
  constructor(status, message) { super(message); this.status = status; }
}

async function call(method, url, body) {
  const response = await fetch(url, {
    method, headers: { "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  let payload = {};
  try { payload = await response.json(); } catch { /* an HTML error page */ }
  if (!response.ok) throw new HttpError(response.status, payload.error || response.statusText);
  return payload;
}

// Older pages stored bare ids; now {id, preview}.
function loadThreads() {
  const raw = JSON.parse(localStorage.getItem("eb-threads") || "[]");
  return raw.map((t) => (typeof t === "string" ? { id: t, preview: "" } : t));
}

function saveThreads() { localStorage.setItem("eb-threads", JSON.stringify(state.threads)); }

// crypto.randomUUID exists only in secure contexts (https, localhost).
function newId() {
  return crypto.randomUUID ? crypto.randomUUID()
    : `${Date.now().toString(36)}-${Math.random().toString(36).slice(2)}`;
}

function showError(message) {
  $("error-text").textContent = message;
  $("error").hidden = false;
}

function threadName(thread) {
  return thread.preview || `Thread ${state.threads.indexOf(thread) + 1} (no message yet)`;
}

function renderThreadList() {
  const items = [...state.threads].reverse().map((thread) => {
    const item = document.createElement("li");
    const button = document.createElement("button");
    button.type = "button";
    button.className = thread.id === state.current ? "active" : "";
    const preview = document.createElement("span");
    preview.className = "preview";
    preview.textContent = threadName(thread);
    const sub = document.createElement("span");
    sub.className = "sub";
    sub.textContent = `Thread ${state.threads.indexOf(thread) + 1} · ${thread.id.slice(0, 6)}`;
    button.append(preview, sub);
    button.addEventListener("click", () => openThread(thread.id));
    item.append(button);
    return item;
  });
  $("thread-list").replaceChildren(...items);
  $("threads-empty").hidden = items.length > 0;
}

function addEntry(entry) {
  $("empty").hidden = true;
  const bubble = document.createElement("div");
  bubble.className = `msg ${entry.role}`;
  bubble.dataset.role = entry.role;
  const who = document.createElement("span");
  who.className = "who";
  const names = { user: "You (customer)", staff: "Staff", notice: "bridge", local: "" };
  who.textContent = entry.role in names ? names[entry.role] : (entry.name || "agent");
  const body = document.createElement("span");
  body.className = "text";
  body.textContent = entry.text;
  if (who.textContent) bubble.append(who);
  bubble.append(body);
  $("log").append(bubble);
  $("log").scrollTop = $("log").scrollHeight;
  const thread = state.threads.find((t) => t.id === state.current);
  if (thread && !thread.preview && (entry.role === "user" || entry.role === "staff")) {
    thread.preview = entry.text.slice(0, 80);
    saveThreads();
    renderThreadList();
  }
}

function showState(info) {
  const badge = $("thread-state");
  const lifecycle = info.state || "new";
  badge.hidden = false;
  badge.textContent = lifecycle;
  badge.className = `badge ${lifecycle}`;
  badge.dataset.state = lifecycle;
  const meta = $("thread-meta");
  if (info.conversation_id && meta.dataset.conversation !== info.conversation_id) {
    meta.dataset.conversation = info.conversation_id;
    // Only staff may open the operator view; visitors just see the id.
    const link = document.createElement(info.staff === false ? "span" : "a");
    if (info.staff !== false) link.href = `/operator/threads/${encodeURIComponent(info.thread)}`;
    link.textContent = `conversation ${info.conversation_id.slice(0, 8)}…`;
    link.title = info.conversation_id;
    meta.replaceChildren(link);
  } else if (!info.conversation_id) {
    delete meta.dataset.conversation;
    meta.textContent = "no conversation yet: it starts with the first message";
  }
  $("status-line").textContent = info.status_line || "";
  const known = Boolean(info.conversation_id);
  state.known = known;
  setStaff(info.staff !== false);
  $("sign-out").hidden = !info.signed_in;
  showAgent(info.agent || (!known && currentThread()?.agent) || state.defaultAgent);
  $("handoff").disabled = !known || lifecycle === "human";
  $("resume").disabled = !known || lifecycle === "bot";
  $("resolve").disabled = !known || lifecycle === "resolved";
}

function setStaff(staff) {
  state.staff = staff;
  for (const element of document.querySelectorAll(".staff-only")) element.hidden = !staff;
  // Before the first message the choice travels with it; afterwards it is the `agent` command.
  $("agent").disabled = !staff || !state.current || state.agents.length === 0;
}

async function poll() {
  if (!state.current) return;
  const id = state.current;
  try {
    const info = await call("GET", `${api}/threads/${id}?after=${state.seen}`);
    if (id !== state.current) return;
    for (const entry of info.entries) {
      if (entry.seq > state.seen) { addEntry(entry); state.seen = entry.seq; }
    }
    showState(info);
  } catch (error) {
    if (id !== state.current) return;
    if (error.status === 404) return forget(id);
    showError(`Connection problem: ${error.message}`);
  }
}

function forget(id) {
  state.threads = state.threads.filter((t) => t.id !== id);
  saveThreads();
  closeThread();
  showError("That thread is no longer available in this browser (expired or started elsewhere).");
}

function closeThread() {
  clearInterval(state.timer);
  state.current = null;
  state.known = false;
  $("thread-title").textContent = "No thread yet";
  $("thread-state").hidden = true;
  $("thread-meta").replaceChildren();
  $("log").replaceChildren($("empty"));
  $("empty").hidden = false;
  $("status-line").textContent = "";
  for (const control of ["text", "send-user", "send-staff", "agent"]) $(control).disabled = true;
  renderThreadList();
}

function openThread(id) {
  state.current = id;
  state.known = false;
  state.seen = 0;
  delete $("thread-meta").dataset.conversation;
  $("thread-meta").replaceChildren();
  $("log").replaceChildren($("empty"));
  $("empty").hidden = false;
  $("status-line").textContent = "";
  $("thread-title").textContent = `Thread ${state.threads.findIndex((t) => t.id === id) + 1}`;
  for (const control of ["text", "send-user", "send-staff"]) $(control).disabled = false;
  setStaff(state.staff);
  renderThreadList();
  clearInterval(state.timer);
  state.timer = setInterval(poll, pollMs);
  poll();
  $("text").focus();
}

async function newThread() {
  try {
    const created = await call("POST", `${api}/threads`, {});
    state.threads.push({ id: created.id, preview: "" });
    saveThreads();
    openThread(created.id);
  } catch (error) {
    showError(`Could not start a thread: ${error.message}`);
  }
}

function currentThread() { return state.threads.find((t) => t.id === state.current); }

async function send(as) {
  const text = $("text").value.trim();
  if (!text || !state.current || state.busy) return;
  state.busy = true;
  const chosen = !state.known && state.staff ? currentThread()?.agent : undefined;
  try {
    await call("POST", `${api}/threads/${state.current}/messages`,
      { text, as, client_id: newId(), ...(chosen ? { agent: chosen } : {}) });
    $("text").value = "";
    await poll();
  } catch (error) {
    // The text stays in the box, so it can be shortened or sent again.
    const size = text.length > 8000 ? ` (this one has ${text.length})` : "";
    showError(`Message not sent: ${error.message}${size}`);
  } finally {
    state.busy = false;
  }
}

async function command(name, extra = {}) {
  if (!state.current) return;
  try {
    await call("POST", `${api}/threads/${state.current}/commands`,
      { command: name, client_id: newId(), ...extra });
    await poll();
  } catch (error) {
    showError(`${name} failed: ${error.message}`);
  }
}

function showAgent(name) {
  const select = $("agent");
  if (name && select.value !== name && document.activeElement !== select) {
    if (![...select.options].some((o) => o.value === name)) select.add(new Option(name, name));
    select.value = name;
  }
  const agent = state.agents.find((a) => a.name === select.value);
  const about = agent ? agent.description : "";
  $("agent-about").textContent = about;
}

async function loadAgents() {
  try {
    const listing = await call("GET", `${api}/agents`);
    state.agents = listing.agents || [];
    state.defaultAgent = listing.default || "";
    $("agent").replaceChildren(...state.agents.map((a) => new Option(a.title, a.name)));
    showAgent(state.defaultAgent);
    setStaff(state.staff);
  } catch (error) {
    $("agent").replaceChildren(new Option("agents unavailable", ""));
    showError(`Could not list the agents: ${error.message}`);
  }
}

$("new-thread").addEventListener("click", newThread);
$("composer").addEventListener("submit", (event) => { event.preventDefault(); send("user"); });
$("send-staff").addEventListener("click", () => send("staff"));
$("error-close").addEventListener("click", () => { $("error").hidden = true; });
$("agent").addEventListener("change", (event) => {
  const name = event.target.value;
  showAgent(name);
  if (state.known) return command("agent", { agent: name });
  // No conversation yet: the thread starts with this agent (sent with its first message).
  const thread = currentThread();
  if (thread) { thread.agent = name; saveThreads(); }
});
for (const name of ["handoff", "resume", "resolve"]) {
  $(name).addEventListener("click", () => command(name));
}
renderThreadList();
loadAgents();
if (state.threads.length) openThread(state.threads[state.threads.length - 1].id);
