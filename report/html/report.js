(function () {
  "use strict";
  var source = document.getElementById("findings-data");
  var table = document.getElementById("findings");
  if (!source || !table) {
    return;
  }

  // The data block's layout is described in write_html_data.go.
  var data = JSON.parse(source.textContent);
  // Once read, the block only slows every layout of the page down.
  source.remove();
  var strings = data.strings;
  var findings = data.findings;
  var SEVERITY = 0, KIND = 1, GROUP = 2, RULE = 3, DIRECTION = 4, PORTS = 5, CIDR = 6,
    DESCRIPTION = 7, FIRST_SEEN = 8, CHANGE = 9, PREFIX_LIST = 10, INVALID = 11, REASONS = 12,
    VERDICTS = 13;
  var ACCOUNT = 0, REGION = 1, GROUP_ID = 2, GROUP_NAME = 3; // in a group
  var TEXT_FIELDS = [SEVERITY, KIND, RULE, DIRECTION, PORTS, CIDR, DESCRIPTION, FIRST_SEEN, CHANGE];
  var SEVERITIES = ["critical", "high", "medium", "low", "info"];
  var PAGE = 200; // rows added to the table at a time

  var text = document.getElementById("filter-text");
  var severity = document.getElementById("filter-severity");
  var kind = document.getElementById("filter-kind");
  var account = document.getElementById("filter-account"); // only with several accounts
  var shown = document.getElementById("shown");
  var more = document.getElementById("more");
  var showMore = document.getElementById("show-more");
  var body = document.createElement("tbody");
  table.appendChild(body);

  var all = [];
  for (var i = 0; i < findings.length; i++) {
    all.push(i);
  }
  var sorted = all; // every finding, in the chosen order
  var selected = all; // the sorted findings that pass the filter
  var rendered = 0; // how many of selected are in the table

  // Elements.

  function el(tag, className, content) {
    var e = document.createElement(tag);
    if (className) {
      e.className = className;
    }
    if (content !== undefined) {
      e.textContent = content;
    }
    return e;
  }

  // prose appends text to parent, to wrap at spaces only: a word that a browser would
  // break at a hyphen, slash, dot or colon (an id, an address, a path) is kept whole.
  function prose(parent, text) {
    text.split(/(\S*[-\/.:]\S*)/).forEach(function (piece, i) {
      if (i % 2) {
        parent.appendChild(el("span", "nowrap", piece));
      } else if (piece) {
        parent.appendChild(document.createTextNode(piece));
      }
    });
    return parent;
  }

  function lines(td, first, second, secondClass) {
    if (first) {
      td.appendChild(document.createTextNode(first));
    }
    if (second) {
      if (first) {
        td.appendChild(el("br"));
      }
      td.appendChild(el("span", secondClass, second));
    }
    return td;
  }

  var rankOfText = {};
  function rank(f) {
    var r = rankOfText[f[SEVERITY]];
    if (r === undefined) {
      r = SEVERITIES.indexOf(strings[f[SEVERITY]]);
      rankOfText[f[SEVERITY]] = r = r < 0 ? SEVERITIES.length : r;
    }
    return r;
  }

  function severityClass(f) {
    return rank(f) < SEVERITIES.length ? strings[f[SEVERITY]] : "other";
  }

  function verdictItem(index) {
    var v = data.verdicts[index];
    var li = el("li");
    li.appendChild(el("span", "verdict v-" + strings[v[0]], strings[v[1]]));
    if (v[2]) {
      li.appendChild(document.createTextNode(" "));
      li.appendChild(prose(el("span", "detail"), strings[v[2]]));
    }
    if (v[3]) {
      li.appendChild(el("br"));
      prose(li, strings[v[3]]);
    }
    if (v[4]) {
      li.appendChild(el("br"));
      li.appendChild(el("span", "detail", strings[v[4]]));
    }
    return li;
  }

  function rows(f) {
    var main = el("tr", "finding");
    var td = el("td", "token");
    td.appendChild(el("span", "sev sev-" + severityClass(f), strings[f[SEVERITY]]));
    td.appendChild(el("br"));
    td.appendChild(el("span", "kind", strings[f[KIND]]));
    main.appendChild(td);
    var g = data.groups[f[GROUP]];
    main.appendChild(lines(el("td", "token"), strings[g[ACCOUNT]], strings[g[REGION]]));
    main.appendChild(lines(el("td", "token"), strings[g[GROUP_ID]], strings[g[GROUP_NAME]], "name"));
    main.appendChild(lines(el("td", "token"), strings[f[DIRECTION]], strings[f[PORTS]]));
    td = lines(el("td", "token"), strings[f[CIDR]]);
    if (f[PREFIX_LIST]) {
      var p = data.prefixLists[f[PREFIX_LIST] - 1];
      var list = el("div", "prefix-list");
      list.appendChild(document.createTextNode("list " + strings[p[0]]));
      if (p[1]) {
        list.appendChild(el("br"));
        list.appendChild(el("span", "name", strings[p[1]]));
      }
      if (p[4]) {
        list.appendChild(el("br"));
        list.appendChild(el("span", "detail", "AWS-managed"));
      }
      td.appendChild(list);
    }
    main.appendChild(td);
    td = el("td", "token");
    var change = strings[f[CHANGE]];
    if (change) {
      td.appendChild(el("span", change === "new" ? "new" : "change", change));
    }
    if (f[FIRST_SEEN]) {
      if (change) {
        td.appendChild(el("br"));
      }
      td.appendChild(document.createTextNode("first seen"));
      td.appendChild(el("br"));
      td.appendChild(document.createTextNode(strings[f[FIRST_SEEN]]));
    }
    main.appendChild(td);

    var detail = el("tr", "finding-detail");
    td = el("td", "prose");
    td.colSpan = 6;
    var description = el("p", "description");
    description.appendChild(el("span", "label", "Description: "));
    if (f[DESCRIPTION]) {
      prose(description, strings[f[DESCRIPTION]]);
    } else {
      description.appendChild(el("span", "none", "none"));
    }
    td.appendChild(description);
    if (f[RULE]) {
      var rule = el("p", "rule");
      rule.appendChild(el("span", "label", "Rule: "));
      rule.appendChild(el("span", "id", strings[f[RULE]]));
      td.appendChild(rule);
    }
    if (f[PREFIX_LIST]) {
      p = data.prefixLists[f[PREFIX_LIST] - 1];
      if (p[2] || p[3]) {
        var entry = el("p", "description");
        entry.appendChild(el("span", "label", "Prefix list " + strings[p[0]] + ": "));
        if (p[2]) {
          prose(entry, "the entry's description is " + strings[p[2]]);
        }
        if (p[3]) {
          prose(entry, (p[2] ? "; " : "") + "entries not read: " + strings[p[3]]);
        }
        td.appendChild(entry);
      }
    }
    if (f[INVALID]) {
      var inv = data.invalid[f[INVALID] - 1];
      var invalid = el("p", "invalid");
      invalid.appendChild(el("span", "label", "Invalid " + strings[inv[0]] + ": "));
      invalid.appendChild(el("code", "", strings[inv[1]]));
      if (inv[2]) {
        prose(invalid, " (" + strings[inv[2]] + ")");
      }
      td.appendChild(invalid);
    }
    if (f[REASONS].length) {
      var reasons = el("ul", "reasons");
      f[REASONS].forEach(function (r) {
        reasons.appendChild(prose(el("li"), strings[r]));
      });
      td.appendChild(reasons);
    }
    if (f[VERDICTS].length) {
      var verdicts = el("ul", "verdicts");
      f[VERDICTS].forEach(function (v) {
        verdicts.appendChild(verdictItem(v));
      });
      td.appendChild(verdicts);
    }
    detail.appendChild(td);
    return [main, detail];
  }

  // Rendering, a page at a time.

  function renderMore() {
    var end = Math.min(rendered + PAGE, selected.length);
    var fragment = document.createDocumentFragment();
    for (; rendered < end; rendered++) {
      var pair = rows(findings[selected[rendered]]);
      fragment.appendChild(pair[0]);
      fragment.appendChild(pair[1]);
    }
    body.appendChild(fragment);
    var left = selected.length - rendered;
    more.hidden = left === 0;
    showMore.textContent = "Show " + Math.min(PAGE, left) + " more (" + left + " not shown)";
    shown.textContent = selected.length + " of " + findings.length + " findings match" +
      (left ? ", the first " + rendered + " shown" : "");
  }

  function render() {
    body.textContent = "";
    rendered = 0;
    renderMore();
  }

  // Filtering: a text matches a finding when one of its texts contains it.

  var lower = null;
  function matching(q) {
    if (!lower) {
      lower = strings.map(function (s) {
        return s.toLowerCase();
      });
    }
    var hit = new Uint8Array(strings.length);
    for (var i = 0; i < lower.length; i++) {
      hit[i] = lower[i].indexOf(q) >= 0 ? 1 : 0;
    }
    function any(list) {
      for (var j = 0; j < list.length; j++) {
        if (hit[list[j]]) {
          return 1;
        }
      }
      return 0;
    }
    return {
      texts: hit,
      groups: Uint8Array.from(data.groups, any),
      verdicts: Uint8Array.from(data.verdicts, any),
      prefixLists: Uint8Array.from(data.prefixLists, any),
      invalid: Uint8Array.from(data.invalid, any)
    };
  }

  function matches(f, m) {
    for (var i = 0; i < TEXT_FIELDS.length; i++) {
      if (m.texts[f[TEXT_FIELDS[i]]]) {
        return true;
      }
    }
    if (m.groups[f[GROUP]]) {
      return true;
    }
    var reasons = f[REASONS], verdicts = f[VERDICTS];
    for (i = 0; i < reasons.length; i++) {
      if (m.texts[reasons[i]]) {
        return true;
      }
    }
    for (i = 0; i < verdicts.length; i++) {
      if (m.verdicts[verdicts[i]]) {
        return true;
      }
    }
    return (f[PREFIX_LIST] && m.prefixLists[f[PREFIX_LIST] - 1]) ||
      (f[INVALID] && m.invalid[f[INVALID] - 1]) || false;
  }

  function filter() {
    var q = text.value.trim().toLowerCase();
    var sev = severity.value ? strings.indexOf(severity.value) : -1;
    var k = kind.value ? strings.indexOf(kind.value) : -1;
    var accountValue = account ? account.value : "";
    var a = accountValue ? strings.indexOf(accountValue) : -1;
    if (!q && !severity.value && !kind.value && !accountValue) {
      selected = sorted;
    } else if ((severity.value && sev < 0) || (kind.value && k < 0) || (accountValue && a < 0)) {
      selected = [];
    } else {
      var m = q ? matching(q) : null;
      selected = sorted.filter(function (i) {
        var f = findings[i];
        return (sev < 0 || f[SEVERITY] === sev) && (k < 0 || f[KIND] === k) &&
          (a < 0 || data.groups[f[GROUP]][ACCOUNT] === a) && (!m || matches(f, m));
      });
    }
    render();
  }

  var pending = 0;
  function filterSoon() {
    clearTimeout(pending);
    pending = setTimeout(filter, 100);
  }

  // Sorting: texts in natural order (numbers by value), case ignored.

  function naturalKey(s) {
    return s.toLowerCase().replace(/\d+/g, function (n) {
      n = n.replace(/^0+(?=\d)/, "");
      return String.fromCharCode(64 + Math.min(n.length, 60)) + n;
    });
  }

  // textRank returns, for each finding, the rank of its text that get returns among those
  // of all findings.
  function textRank(get) {
    var used = new Uint8Array(strings.length);
    findings.forEach(function (f) {
      used[get(f)] = 1;
    });
    var texts = [];
    for (var i = 0; i < used.length; i++) {
      if (used[i]) {
        texts.push({ index: i, key: naturalKey(strings[i]) });
      }
    }
    texts.sort(function (a, b) {
      return a.key < b.key ? -1 : a.key > b.key ? 1 : 0;
    });
    var ranks = new Int32Array(strings.length);
    texts.forEach(function (t, n) {
      ranks[t.index] = n;
    });
    return findings.map(function (f) {
      return ranks[get(f)];
    });
  }

  function field(n) {
    return function (f) {
      return f[n];
    };
  }
  function groupField(n) {
    return function (f) {
      return data.groups[f[GROUP]][n];
    };
  }

  // The sort keys of each column, each of them computed once.
  var columns = {
    severity: [rank, field(KIND)],
    where: [groupField(ACCOUNT), groupField(REGION)],
    group: [groupField(GROUP_ID), groupField(GROUP_NAME)],
    rule: [field(DIRECTION), field(PORTS), field(RULE)],
    cidr: [field(CIDR)],
    seen: [field(FIRST_SEEN), field(CHANGE)]
  };
  var keys = new Map();
  function keyOf(get) {
    if (!keys.has(get)) {
      keys.set(get, get === rank ? findings.map(rank) : textRank(get));
    }
    return keys.get(get);
  }

  var headers = Array.prototype.slice.call(table.tHead.rows[0].cells);
  function sortBy(th) {
    var dir = th.getAttribute("aria-sort") === "ascending" ? -1 : 1;
    headers.forEach(function (h) {
      h.removeAttribute("aria-sort");
    });
    th.setAttribute("aria-sort", dir === 1 ? "ascending" : "descending");
    var by = columns[th.dataset.sort].map(keyOf);
    sorted = all.slice().sort(function (a, b) {
      for (var i = 0; i < by.length; i++) {
        var d = by[i][a] - by[i][b];
        if (d) {
          return dir * d;
        }
      }
      return a - b;
    });
    filter();
  }

  headers.forEach(function (th) {
    var button = el("button");
    button.type = "button";
    button.title = "Sort by this column";
    while (th.firstChild) {
      button.appendChild(th.firstChild);
    }
    th.appendChild(button);
    button.addEventListener("click", function () {
      sortBy(th);
    });
  });

  document.getElementById("controls").addEventListener("submit", function (e) {
    e.preventDefault();
    clearTimeout(pending);
    filter();
  });
  text.addEventListener("input", filterSoon);
  severity.addEventListener("change", filter);
  kind.addEventListener("change", filter);
  if (account) {
    account.addEventListener("change", filter);
  }
  showMore.addEventListener("click", renderMore);
  if ("IntersectionObserver" in window) {
    new IntersectionObserver(function (entries) {
      if (entries.some(function (e) { return e.isIntersecting; }) && rendered < selected.length) {
        renderMore();
      }
    }, { rootMargin: "400px" }).observe(more);
  }
  document.getElementById("controls").hidden = false;
  document.getElementById("findings-view").hidden = false;
  render();
  table.setAttribute("data-ready", "");
})();
