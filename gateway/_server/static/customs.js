// The pre-declaration board of cross-border orders (gateway/_server/customs_api.py): which
// orders miss which declaration attribute and which product or supplier record fills it; a
// fill file to download, and CSV/JSON imports. Plain JavaScript, no build step. The token is
// the dashboard's (sessionStorage of this tab, sent as "Authorization: Bearer", never in a URL);
// every value is written with textContent, never as HTML. zh-CN by default, English on switch.
"use strict";

(function () {
  const STRINGS = {
    "zh-CN": {
      title: "跨境申报预检", switchLang: "English", dashboard: "返回运营看板", refresh: "刷新",
      signInTitle: "登录", tokenLabel: "API 令牌", tenantLabel: "租户", signIn: "登录",
      needToken: "请填写 API 令牌和租户", badToken: "令牌无效或已撤销，请重新登录",
      who: "租户 {tenant}",
      boardTitle: "缺少申报要素的跨境订单",
      boardNote: "跨境订单缺少任何申报要素时，打包工位会暂停该订单（DECLARATION_INCOMPLETE）。按“补齐位置”在商品或供应商档案中补齐，或下载补齐表填写 value 列后导入；补齐后重扫订单即可打包，申报信息自动转发给 ERP。不从 PDF 检测报告中提取数据。",
      summary: "待补齐 {incomplete} 单 · 已齐全 {complete} 单", off: "未启用申报检查（配置目录中没有 attributes.toml）",
      showAll: "也显示已齐全的订单", download: "下载补齐表（CSV）",
      colOrder: "订单", colDestination: "目的地 / 判定依据", colMissing: "缺少的要素与补齐位置",
      complete: "已齐全", empty: "没有缺少申报要素的跨境订单",
      importTitle: "导入", importNote: "商品档案（sku,name,category,supplier,要素…）、供应商档案（supplier,name,要素…）或补齐表（target,id,sku,attribute,value）。有任何问题时整份文件都不导入，并列出行号和列名。",
      importKind: "文件类型", kindValues: "补齐表（申报值）", kindProducts: "商品档案", kindSuppliers: "供应商档案",
      dryRun: "只校验，不导入", importButton: "导入",
      imported: "已导入 {rows} 行；补齐并转发 {completed} 单；仍缺 {incomplete} 单",
      checked: "校验通过：{rows} 行（未导入）", refused: "文件未导入：{n} 个问题",
      unreachable: "无法连接网关：{error}",
    },
    en: {
      title: "Cross-border pre-declaration", switchLang: "中文", dashboard: "Back to the dashboard", refresh: "Refresh",
      signInTitle: "Sign in", tokenLabel: "API token", tenantLabel: "Tenant", signIn: "Sign in",
      needToken: "Enter the API token and the tenant", badToken: "The token is wrong or revoked: sign in again",
      who: "tenant {tenant}",
      boardTitle: "Cross-border orders with missing declaration attributes",
      boardNote: "A cross-border order missing any declaration attribute is held at the pack station (DECLARATION_INCOMPLETE). Fill the record named under 'fill', or download the fill file, fill its value column and import it; then scan the order again to pack it, and the declaration is forwarded to the ERP. Values are not extracted from PDF test reports.",
      summary: "{incomplete} to complete · {complete} complete", off: "The declaration check is off (no attributes.toml in the configuration)",
      showAll: "also show complete orders", download: "Download the fill file (CSV)",
      colOrder: "Order", colDestination: "Destination / why cross-border", colMissing: "Missing and where to fill it",
      complete: "complete", empty: "No cross-border order misses a declaration attribute",
      importTitle: "Import", importNote: "Product master data (sku,name,category,supplier,attributes...), supplier master data (supplier,name,attributes...) or a fill file (target,id,sku,attribute,value). A file with any problem is not imported; every problem names its row and column.",
      importKind: "File", kindValues: "fill file (declaration values)", kindProducts: "products", kindSuppliers: "suppliers",
      dryRun: "check only, do not import", importButton: "Import",
      imported: "Imported {rows} rows; {completed} order(s) completed and forwarded; {incomplete} still incomplete",
      checked: "Checked: {rows} rows (not imported)", refused: "Not imported: {n} problem(s)",
      unreachable: "Cannot reach the gateway: {error}",
    },
  };
  const $ = (id) => document.getElementById(id);
  const store = (kind) => ({
    get(key) { try { return window[kind].getItem(key); } catch (e) { return null; } },
    set(key, value) { try { window[kind].setItem(key, value); } catch (e) { /* private mode */ } },
    remove(key) { try { window[kind].removeItem(key); } catch (e) { /* private mode */ } },
  });
  const local = store("localStorage");
  const session = store("sessionStorage");
  const query = new URLSearchParams(window.location.search);
  let lang = query.get("lang") || local.get("dashboard.lang");
  if (lang === "zh") lang = "zh-CN";
  if (lang !== "en") lang = "zh-CN";
  let token = session.get("dashboard.token") || "";
  let tenant = query.get("tenant") || session.get("dashboard.tenant") || "";
  let last = null;
  const t = (key, values) => String(STRINGS[lang][key]).replace(/\{(\w+)\}/g, (_, name) => String((values || {})[name] ?? ""));
  const text = (item, key) => (lang === "en" ? item[key + "_en"] || item[key] : item[key] || item[key + "_en"]) || "";

  function element(tag, className, content) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (content !== undefined) node.textContent = content;
    return node;
  }

  async function request(path, options) {
    const headers = Object.assign({ Authorization: "Bearer " + token }, (options || {}).headers || {});
    const reply = await fetch(path, Object.assign({}, options || {}, { headers }));
    if (reply.status === 401) { signOut(t("badToken")); throw new Error(t("badToken")); }
    return reply;
  }

  function signOut(message) {
    token = "";
    session.remove("dashboard.token");
    document.body.className = "signed-out";
    $("main").hidden = true;
    $("sign-in").hidden = false;
    $("sign-in-error").textContent = message || "";
  }

  function render() {
    document.documentElement.lang = lang;
    document.title = t("title");
    const words = { title: "title", "nav-dashboard": "dashboard", refresh: "refresh", lang: "switchLang",
      "sign-in-title": "signInTitle", "token-label": "tokenLabel", "tenant-label": "tenantLabel",
      "sign-in-button": "signIn", "board-title": "boardTitle", "board-note": "boardNote", "show-all-label": "showAll",
      download: "download", "col-order": "colOrder", "col-destination": "colDestination", "col-missing": "colMissing",
      "import-title": "importTitle", "import-note": "importNote", "import-kind-label": "importKind",
      "kind-values": "kindValues", "kind-products": "kindProducts", "kind-suppliers": "kindSuppliers",
      "dry-run-label": "dryRun", "import-button": "importButton" };
    for (const [id, key] of Object.entries(words)) $(id).textContent = t(key);
    $("lang").lang = lang === "en" ? "zh-CN" : "en";
    $("who").textContent = token ? t("who", { tenant }) : "";
    if (last) showBoard(last);
  }

  function showBoard(board) {
    last = board;
    $("summary").textContent = board.enabled ? t("summary", board) : t("off");
    const rows = $("rows");
    rows.replaceChildren();
    if (!board.orders.length) {
      const row = element("tr");
      const cell = element("td", "empty", t("empty"));
      cell.colSpan = 3;
      row.appendChild(cell);
      rows.appendChild(row);
    }
    for (const order of board.orders) {
      const row = element("tr");
      row.appendChild(element("td", "order", order.order_id));
      row.appendChild(element("td", "", (order.destination || "?") + " · " + order.cross_border_because));
      const cell = element("td");
      if (!order.missing.length) cell.appendChild(element("span", "ok", t("complete")));
      const list = element("ul");
      for (const need of order.missing) {
        const item = element("li", "", text(need, "message"));
        const hint = text(need, "hint");
        if (hint) item.title = hint;
        list.appendChild(item);
      }
      cell.appendChild(list);
      row.appendChild(cell);
      rows.appendChild(row);
    }
  }

  async function loadBoard() {
    const all = $("show-all").checked ? "?all=1" : "";
    try {
      const reply = await request(`/api/v1/tenants/${encodeURIComponent(tenant)}/customs/board${all}`);
      if (!reply.ok) throw new Error((await reply.json()).error || reply.status);
      showBoard(await reply.json());
    } catch (error) {
      $("summary").textContent = t("unreachable", { error: error.message });
    }
  }

  async function download() {
    const reply = await request(`/api/v1/tenants/${encodeURIComponent(tenant)}/customs/board?format=csv`);
    if (!reply.ok) return;
    const url = URL.createObjectURL(await reply.blob());
    const link = element("a");
    link.href = url;
    link.download = `customs-fill-${tenant}.csv`;
    document.body.appendChild(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10000);
  }

  async function importFile(event) {
    event.preventDefault();
    const file = $("import-file").files[0];
    if (!file) return;
    const kind = $("import-kind").value;
    const dry = $("dry-run").checked ? "&dry_run=1" : "";
    $("import-result").textContent = "";
    $("import-errors").replaceChildren();
    try {
      const reply = await request(`/api/v1/tenants/${encodeURIComponent(tenant)}/customs/${kind}` +
        `?filename=${encodeURIComponent(file.name)}${dry}`, { method: "POST", body: await file.arrayBuffer() });
      const body = await reply.json();
      if (reply.status === 422) {
        $("import-result").textContent = t("refused", { n: body.errors.length + (body.more || 0) });
        for (const problem of body.errors) {
          const where = `${problem.file}:${problem.row ?? "-"}:${problem.column || "-"}: `;
          $("import-errors").appendChild(element("li", "", where + text(problem, "message")));
        }
        return;
      }
      if (!reply.ok) throw new Error(body.error || reply.status);
      $("import-result").textContent = body.dry_run ? t("checked", body)
        : t("imported", { rows: body.rows, completed: body.completed.length, incomplete: body.incomplete });
      await loadBoard();
    } catch (error) {
      $("import-result").textContent = t("unreachable", { error: error.message });
    }
  }

  function start() {
    document.body.className = "signed-in";
    $("sign-in").hidden = true;
    $("main").hidden = false;
    render();
    loadBoard();
  }

  $("sign-in-form").addEventListener("submit", (event) => {
    event.preventDefault();
    token = $("token").value.trim();
    tenant = $("tenant").value.trim();
    if (!token || !tenant) { $("sign-in-error").textContent = t("needToken"); return; }
    session.set("dashboard.token", token);
    session.set("dashboard.tenant", tenant);
    start();
  });
  $("lang").addEventListener("click", () => {
    lang = lang === "en" ? "zh-CN" : "en";
    local.set("dashboard.lang", lang);
    render();
  });
  $("refresh").addEventListener("click", loadBoard);
  $("show-all").addEventListener("change", loadBoard);
  $("download").addEventListener("click", download);
  $("import-form").addEventListener("submit", importFile);
  render();
  if (token && tenant) start(); else signOut("");
})();
