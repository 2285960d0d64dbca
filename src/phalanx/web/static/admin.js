// phalanx admin pages: users, API tokens and the audit log.
// Everything from the server is put into the page with textContent and DOM
// calls only (labels and audit entries are free text: never HTML). Every
// change is a JSON POST carrying the session's CSRF token.
"use strict";

const AUDIT_POLL_MS = 5000;

function csrfToken() {
  const meta = document.querySelector('meta[name="csrf-token"]');
  return meta ? meta.getAttribute("content") : "";
}

function say(text, isError) {
  const message = document.getElementById("admin-message");
  if (!message) return;
  message.textContent = text;
  message.classList.toggle("error", Boolean(isError));
}

function when(seconds) {
  if (seconds === null || seconds === undefined) return "never";
  return new Date(seconds * 1000).toISOString().replace("T", " ").slice(0, 16);
}

function element(tag, text) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = String(text);
  return node;
}

function button(label, onClick, className) {
  const node = element("button", label);
  node.type = "button";
  if (className) node.className = className;
  node.addEventListener("click", onClick);
  return node;
}

async function getJson(path) {
  const response = await fetch(path, { credentials: "same-origin", headers: { Accept: "application/json" } });
  if (response.status === 401) {
    window.location.assign("/login");
    return null;
  }
  const data = await response.json().catch(() => ({}));
  if (!response.ok) {
    say(data.error || `error ${response.status}`, true);
    return null;
  }
  return data;
}

async function post(path, body, doneText) {
  const response = await fetch(path, {
    method: "POST",
    credentials: "same-origin",
    headers: { "Content-Type": "application/json", "X-CSRF-Token": csrfToken() },
    body: JSON.stringify(body),
  });
  if (response.status === 401) {
    window.location.assign("/login");
    return null;
  }
  const data = await response.json().catch(() => ({}));
  if (!response.ok) {
    say(data.error || `error ${response.status}`, true);
    return null;
  }
  say(doneText, false);
  return data;
}

// --- users ---------------------------------------------------------------------------

function roleSelect(current) {
  const select = document.createElement("select");
  for (const option of document.querySelectorAll("#add-user-role option")) {
    const copy = element("option", option.value);
    copy.value = option.value;
    copy.selected = option.value === current;
    select.appendChild(copy);
  }
  return select;
}

function userRow(user, you) {
  const tr = document.createElement("tr");
  tr.dataset.user = user.name;
  tr.appendChild(element("td", user.name === you ? `${user.name} (you)` : user.name));
  const roleCell = document.createElement("td");
  const select = roleSelect(user.role);
  select.setAttribute("aria-label", `role of ${user.name}`);
  select.addEventListener("change", async () => {
    const done = await post("/api/v1/users/set-role", { name: user.name, role: select.value },
      `${user.name} is now ${select.value}; their sessions have ended`);
    if (!done) select.value = user.role;
    await loadUsers();
  });
  roleCell.appendChild(select);
  tr.appendChild(roleCell);
  tr.appendChild(element("td", user.disabled ? "disabled" : "enabled"));
  tr.appendChild(element("td", when(user.password_changed)));
  const actions = document.createElement("td");
  actions.appendChild(button("Reset password", () => {
    const name = document.getElementById("reset-name");
    name.value = user.name;
    document.getElementById("reset-password").focus();
  }));
  const toggle = user.disabled ? "enable" : "disable";
  actions.appendChild(button(user.disabled ? "Enable" : "Disable", async () => {
    await post(`/api/v1/users/${toggle}`, { name: user.name }, `${user.name}: ${toggle}d`);
    await loadUsers();
  }));
  actions.appendChild(button("Remove", async () => {
    if (!window.confirm(`Remove the user ${user.name}? Their sessions end at once.`)) return;
    await post("/api/v1/users/remove", { name: user.name }, `${user.name} removed`);
    await loadUsers();
  }, "danger"));
  tr.appendChild(actions);
  return tr;
}

async function loadUsers() {
  const body = document.querySelector("#users-table tbody");
  if (!body) return;
  const data = await getJson("/api/v1/users");
  if (!data) return;
  body.replaceChildren(...data.users.map((user) => userRow(user, data.you)));
  const names = document.getElementById("reset-name");
  const chosen = names.value;
  names.replaceChildren(...data.users.map((user) => {
    const option = element("option", user.name);
    option.value = user.name;
    option.selected = user.name === chosen;
    return option;
  }));
}

function setUpUserForms() {
  const add = document.getElementById("add-user-form");
  if (add) {
    add.addEventListener("submit", async (event) => {
      event.preventDefault();
      const name = document.getElementById("add-user-name").value;
      const password = document.getElementById("add-user-password");
      const done = await post("/api/v1/users/add", {
        name, role: document.getElementById("add-user-role").value, password: password.value,
      }, `${name} added`);
      if (done) add.reset();
      password.value = "";
      await loadUsers();
    });
  }
  const reset = document.getElementById("reset-form");
  if (reset) {
    reset.addEventListener("submit", async (event) => {
      event.preventDefault();
      const name = document.getElementById("reset-name").value;
      const password = document.getElementById("reset-password");
      await post("/api/v1/users/reset-password", { name, password: password.value },
        `new password set for ${name}; their sessions have ended`);
      password.value = "";
      await loadUsers();
    });
  }
}

// --- tokens --------------------------------------------------------------------------

function tokenRow(token) {
  const tr = document.createElement("tr");
  tr.dataset.token = token.token_id;
  tr.appendChild(element("td", token.token_id));
  tr.appendChild(element("td", token.label));
  tr.appendChild(element("td", token.role));
  tr.appendChild(element("td", when(token.created)));
  tr.appendChild(element("td", token.expired ? `${when(token.expires)} (expired)` : when(token.expires)));
  tr.appendChild(element("td", when(token.last_used)));
  const actions = document.createElement("td");
  actions.appendChild(button("Revoke", async () => {
    if (!window.confirm(`Revoke the token ${token.token_id}? It stops working at once.`)) return;
    const done = await post("/api/v1/tokens/revoke", { token_id: token.token_id },
      `token ${token.token_id} revoked`);
    if (done && document.getElementById("token-created-id").textContent === token.token_id) {
      document.getElementById("token-secret").value = "";
      document.getElementById("token-created").hidden = true;
    }
    await loadTokens();
  }, "danger"));
  tr.appendChild(actions);
  return tr;
}

async function loadTokens() {
  const body = document.querySelector("#tokens-table tbody");
  if (!body) return;
  const data = await getJson("/api/v1/tokens");
  if (!data) return;
  body.replaceChildren(...data.tokens.map(tokenRow));
}

function setUpTokenForm() {
  const form = document.getElementById("token-form");
  if (!form) return;
  const shown = document.getElementById("token-created");
  const secret = document.getElementById("token-secret");
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const created = await post("/api/v1/tokens/create", {
      role: document.getElementById("token-role").value,
      expires: document.getElementById("token-expires").value,
      label: document.getElementById("token-label").value,
    }, "token created: copy it now, it is shown only once");
    if (created) {
      document.getElementById("token-created-id").textContent = created.token_id;
      secret.value = created.token;
      shown.hidden = false;
      secret.focus();
      secret.select();
      document.getElementById("token-label").value = "";
    }
    await loadTokens();
  });
  document.getElementById("token-copy").addEventListener("click", async () => {
    secret.focus();
    secret.select();
    try {
      await navigator.clipboard.writeText(secret.value);
      say("token copied to the clipboard", false);
    } catch {
      say("select the token and copy it (Ctrl+C)", false);
    }
  });
}

// --- audit log -----------------------------------------------------------------------

function detailsText(details) {
  return Object.entries(details || {}).map(([key, value]) => `${key}=${value}`).join(", ");
}

async function loadAudit() {
  const body = document.querySelector("#audit-table tbody");
  if (!body) return;
  const data = await getJson("/api/v1/audit");
  if (!data) return;
  if (!data.enabled) say("no audit log is kept for this run", false);
  document.getElementById("audit-head").textContent = data.head || "–";
  const rows = [...data.entries].reverse().map((entry) => {
    const tr = document.createElement("tr");
    for (const value of [entry.seq, entry.time, entry.actor, entry.source, entry.action,
      detailsText(entry.details)]) {
      tr.appendChild(element("td", value));
    }
    return tr;
  });
  body.replaceChildren(...rows);
}

// --- page ----------------------------------------------------------------------------

function setUpLogout() {
  const logout = document.getElementById("logout-form");
  if (!logout) return;
  logout.addEventListener("submit", async (event) => {
    event.preventDefault();
    await fetch("/logout", { method: "POST", credentials: "same-origin", headers: { "X-CSRF-Token": csrfToken() } });
    window.location.assign("/login");
  });
}

document.addEventListener("DOMContentLoaded", () => {
  setUpLogout();
  setUpUserForms();
  setUpTokenForm();
  loadUsers();
  loadTokens();
  if (document.getElementById("audit-table")) {
    loadAudit();
    window.setInterval(loadAudit, AUDIT_POLL_MS);
  }
});
