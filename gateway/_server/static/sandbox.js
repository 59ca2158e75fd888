// The rule sandbox page: upload candidate rule files, replay them on the live event log, read the
// report, promote (admin). Every value is written with textContent; the token stays in this tab's
// sessionStorage (shared with the dashboard) and goes out as "Authorization: Bearer".
(function () {
  "use strict";
  const STRINGS = {
    "zh-CN": {
      title: "规则沙盒", dashboard: "运营看板", tokenLabel: "API 令牌", tokenHelp: "令牌须属于全部租户（*）：上传需操作员，发布需管理员。",
      signIn: "登录", uploadTitle: "上传候选规则", uploadHelp: "选择修改过的规则文件（如 erp.toml）。未上传的文件沿用现行规则。发布前不会影响任何订单。",
      filesLabel: "规则文件", giftFiles: "这些是赠品规则（gifts/）", deleteLabel: "删除现行文件（可选，逗号分隔）", windowLabel: "合包时间窗（秒，可选）", noteLabel: "备注",
      upload: "上传并检查", uploaded: "已上传候选 {id}，改动文件：{files}，删除文件：{deleted}", candidatesTitle: "候选规则", daysLabel: "回放最近天数",
      colId: "编号", colFiles: "文件", colUploaded: "上传", colState: "回放", colActions: "操作",
      replay: "回放", report: "查看结果", promote: "发布（管理员）", confirmPromote: "确认将候选 {id} 发布为现行规则？",
      promoted: "已发布 {id}，现行规则摘要 {digest}", reportTitle: "回放结果（现行 → 候选）",
      progress: "{done}/{total} 事件，{rate}/秒，预计剩余 {eta} 秒", noDiff: "没有任何订单会改变。",
      summary: "{events} 个事件，{orders} 个订单；结果会改变的订单：{changed}（状态 {status}，合包 {pack_group}，应发清单 {bill}，隔离 {quarantine}，上传事件 {forwarded}）",
      byRule: "按规则统计", colRule: "规则", colOrders: "订单数", colChanges: "改变", examples: "示例",
      colOrder: "订单", colWhat: "改变", colBefore: "现行", colAfter: "候选", running: "进行中", done: "完成", failed: "失败",
      never: "未回放", errorPrefix: "出错：", promotedMark: "已发布",
      kinds: { status: "状态", pack_group: "合包", bill: "应发清单", quarantine: "隔离", forwarded: "上传事件" },
    },
    en: {
      title: "Rule sandbox", dashboard: "Dashboard", tokenLabel: "API token", tokenHelp: "A token of every tenant (*): operator to upload, admin to promote.",
      signIn: "Sign in", uploadTitle: "Upload candidate rules", uploadHelp: "Pick the rule files you changed (e.g. erp.toml); the others stay as live. Nothing changes an order before promotion.",
      filesLabel: "Rule files", giftFiles: "these are gift rules (gifts/)", deleteLabel: "Delete live files (optional, comma-separated)", windowLabel: "Pack-group window (s, optional)", noteLabel: "Note",
      upload: "Upload and check", uploaded: "Uploaded candidate {id}, changed files: {files}, deleted files: {deleted}", candidatesTitle: "Candidates", daysLabel: "Replay the last days",
      colId: "Id", colFiles: "Files", colUploaded: "Uploaded", colState: "Replay", colActions: "Actions",
      replay: "Replay", report: "Report", promote: "Promote (admin)", confirmPromote: "Promote candidate {id} to the live rules?",
      promoted: "Promoted {id}; live rules digest {digest}", reportTitle: "Replay report (live → candidate)",
      progress: "{done}/{total} events, {rate}/s, ETA {eta} s", noDiff: "No order would change.",
      summary: "{events} events, {orders} orders; orders that would change: {changed} (status {status}, pack group {pack_group}, bill {bill}, quarantine {quarantine}, forwarded {forwarded})",
      byRule: "By rule", colRule: "Rule", colOrders: "Orders", colChanges: "Changes", examples: "Examples",
      colOrder: "Order", colWhat: "Change", colBefore: "Live", colAfter: "Candidate", running: "running", done: "done", failed: "failed",
      never: "not replayed", errorPrefix: "Error: ", promotedMark: "promoted",
      kinds: { status: "status", pack_group: "pack group", bill: "bill", quarantine: "quarantine", forwarded: "forwarded" },
    },
  };
  const API = "/api/v1/sandbox/candidates";
  const $ = (id) => document.getElementById(id);
  const store = (area) => ({
    get(key) { try { return window[area].getItem(key); } catch (e) { return null; } },
    set(key, value) { try { window[area].setItem(key, value); } catch (e) { /* private mode */ } },
  });
  const local = store("localStorage");
  const session = store("sessionStorage");
  const query = new URLSearchParams(window.location.search);
  let lang = query.get("lang") || local.get("dashboard.lang") || "zh-CN";
  if (lang !== "en") lang = "zh-CN";
  let token = session.get("dashboard.token") || "";
  let watching = null;
  const t = (key) => STRINGS[lang][key];
  const tf = (key, values) => String(t(key)).replace(/\{(\w+)\}/g, (m, k) => (values[k] === undefined ? "" : String(values[k])));

  function element(tag, text) {
    const node = document.createElement(tag);
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  async function call(path, options) {
    const init = Object.assign({ cache: "no-store" }, options || {});
    init.headers = Object.assign({ Authorization: "Bearer " + token }, init.headers || {});
    const response = await fetch(path, init);
    const body = await response.json().catch(() => ({}));
    if (!response.ok) {
      const error = new Error((lang === "zh-CN" && body.message_zh) || body.error || "HTTP " + response.status);
      error.body = body;
      throw error;
    }
    return body;
  }

  let uploaded = null;  // the last upload's answer, re-rendered when the language changes

  function render() {
    document.documentElement.lang = lang;
    const labels = {
      title: "title", "nav-dashboard": "dashboard", "token-label": "tokenLabel", "token-help": "tokenHelp",
      "sign-in-button": "signIn", "upload-title": "uploadTitle", "upload-help": "uploadHelp", "files-label": "filesLabel",
      "gift-files-label": "giftFiles", "delete-label": "deleteLabel", "window-label": "windowLabel", "note-label": "noteLabel", upload: "upload",
      "candidates-title": "candidatesTitle", "days-label": "daysLabel", "col-id": "colId", "col-files": "colFiles",
      "col-uploaded": "colUploaded", "col-state": "colState", "col-actions": "colActions", "report-title": "reportTitle",
      "by-rule-title": "byRule", "col-rule": "colRule", "col-orders": "colOrders", "col-changes": "colChanges",
      "examples-title": "examples", "col-order": "colOrder", "col-what": "colWhat", "col-before": "colBefore",
      "col-after": "colAfter",
    };
    for (const [id, key] of Object.entries(labels)) $(id).textContent = t(key);
    if (uploaded) $("upload-result").textContent = tf("uploaded", uploaded);  // said again in the new language
    document.title = t("title");
    $("lang").textContent = lang === "en" ? "中文" : "English";
    $("sign-in").hidden = Boolean(token);
    $("main").hidden = !token;
  }

  function stateText(replay) {
    if (!replay) return t("never");
    const word = t(replay.state) || replay.state;
    return replay.state === "running" ? word + " " + replay.done + "/" + replay.total : word;
  }

  async function refresh() {
    const body = await call(API);
    const rows = $("candidate-rows");
    rows.replaceChildren();
    for (const c of body.candidates) {
      const row = element("tr");
      const deleted = (c.deleted || []).map((name) => "−" + name);
      row.append(element("td", c.id), element("td", c.files.concat(deleted).join(", ")), element("td", new Date(c.uploaded_at_ms).toLocaleString()),
                 element("td", stateText(c.replay) + (c.promoted ? " · " + t("promotedMark") : "")));
      const actions = element("td");
      for (const [key, run] of [["replay", replay], ["report", () => watch(c.id)], ["promote", promote]]) {
        const button = element("button", t(key));
        button.type = "button";
        button.className = "control";
        button.dataset.action = key;
        button.addEventListener("click", () => run(c.id).catch(show));
        actions.append(button);
      }
      row.append(actions);
      rows.append(row);
    }
  }

  function show(error) {
    $("action-result").textContent = t("errorPrefix") + error.message;
  }

  async function replay(id) {
    await call(`${API}/${id}/replay`, { method: "POST", headers: { "Content-Type": "application/json" },
                                          body: JSON.stringify({ days: Number($("days").value) || 30 }) });
    await refresh();
    await watch(id);
  }

  async function promote(id) {
    if (!window.confirm(tf("confirmPromote", { id }))) return;
    const done = await call(`${API}/${id}/promote`, { method: "POST" });
    $("action-result").textContent = tf("promoted", { id, digest: done.rules_digest }) +
      (done.merge_window_note ? " — " + done.merge_window_note : "");
    await refresh();
  }

  async function watch(id) {
    if (watching) window.clearTimeout(watching);
    const body = await call(`${API}/${id}/report`);
    $("report-box").hidden = false;
    const job = body.replay;
    $("progress").value = job.total ? Math.min(1, job.done / job.total) : (job.state === "done" ? 1 : 0);
    $("progress-text").textContent = tf("progress", { done: job.done, total: job.total, rate: job.events_per_s, eta: job.eta_s });
    if (job.state === "running") {
      watching = window.setTimeout(() => watch(id).catch(show), 1000);
      return;
    }
    await refresh();
    if (job.state === "failed") { $("report-summary").textContent = t("errorPrefix") + job.error; return; }
    showReport(body.report);
  }

  function showReport(report) {
    const c = report.changes;
    $("report-summary").textContent = report.orders_changed ? tf("summary", Object.assign({ events: report.events,
      orders: report.orders, changed: report.orders_changed }, c)) : t("noDiff");
    const rules = $("rule-rows");
    rules.replaceChildren();
    for (const row of report.by_rule) {
      const tr = element("tr");
      const changes = Object.entries(row.changes).map(([k, v]) => (t("kinds")[k] || k) + " " + v).join(lang === "en" ? ", " : "，");
      tr.append(element("td", row.rule), element("td", row.orders), element("td", changes));
      rules.append(tr);
    }
    const examples = $("example-rows");
    examples.replaceChildren();
    for (const example of report.examples) {
      for (const kind of example.changes) {
        const tr = element("tr");
        tr.append(element("td", example.order_id + " [" + example.rule + "]"), element("td", t("kinds")[kind] || kind),
                  element("td", fact(example.before, kind)), element("td", fact(example.after, kind)));
        examples.append(tr);
      }
    }
  }

  function fact(facts, kind) {
    if (kind === "forwarded") return facts.forwarded.count + ": " + facts.forwarded.first.join(", ");
    if (kind === "quarantine") return facts.quarantined.join(", ") || "—";
    if (kind === "bill") return (facts.bill || []).join("; ") || "—";
    const value = kind === "status" ? facts.status : facts.pack_group;
    return value === null || value === undefined ? "—" : String(value);
  }

  async function upload(event) {
    event.preventDefault();
    $("upload-errors").replaceChildren();
    const files = {};
    const prefix = $("gift-files").checked ? "gifts/" : "";
    for (const file of $("files").files) files[prefix + file.name] = await file.text();
    const body = { files };
    const deleted = $("delete").value.split(/[,，\s]+/).filter(Boolean);
    if (deleted.length) body.delete = deleted;
    if ($("window").value !== "") body.merge_window_s = Number($("window").value);
    if ($("note").value) body.note = $("note").value;
    try {
      const made = await call(API, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
      uploaded = { id: made.id, files: made.changed.join(", ") || "—", deleted: (made.deleted || []).join(", ") || "—" };
      $("upload-result").textContent = tf("uploaded", uploaded);
      await refresh();
    } catch (error) {
      uploaded = null;
      $("upload-result").textContent = t("errorPrefix") + error.message;
      for (const line of (error.body && error.body.errors) || []) $("upload-errors").append(element("li", line));
    }
  }

  $("lang").addEventListener("click", () => { lang = lang === "en" ? "zh-CN" : "en"; local.set("dashboard.lang", lang); render(); refresh().catch(show); });
  $("sign-in-form").addEventListener("submit", (event) => {
    event.preventDefault();
    token = $("token").value.trim();
    session.set("dashboard.token", token);
    render();
    refresh().catch(show);
  });
  $("upload-form").addEventListener("submit", (event) => { upload(event).catch(show); });
  render();
  if (token) refresh().catch(show);
})();
