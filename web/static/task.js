// Follows a running task on its page (/create/tasks/{id}): opens the task's event stream after the last
// event the server rendered, appends each log line, updates the step and task statuses, and when the
// `completion` event arrives fetches the page again and swaps in the finished state (output links,
// durations). Without this script the page still works: it shows the state at load time and has a
// Refresh link. Loaded with `defer` from the page itself; no inline code, so the strict CSP holds.
(function () {
  "use strict";

  var root = document.getElementById("task");
  if (!root) {
    return;
  }
  var status = root.dataset.status;
  if (status !== "open" && status !== "processing") {
    return;
  }
  var taskId = root.dataset.taskId;
  var after = Number(root.dataset.after);
  var log = document.getElementById("task-log");
  var failures = 0;
  var source = null;
  var done = false;

  function setStatus(element, value) {
    if (!element) {
      return;
    }
    element.textContent = value;
    element.className = element.className
      .split(" ")
      .filter(function (c) { return c.indexOf("status-") !== 0; })
      .concat(["status-" + value])
      .join(" ");
  }

  function stepItem(stepId) {
    var items = document.querySelectorAll("#task-steps li[data-step-id]");
    for (var i = 0; i < items.length; i++) {
      if (items[i].dataset.stepId === stepId) {
        return items[i];
      }
    }
    return null;
  }

  function append(event) {
    var body = event.body || {};
    var item = document.createElement("li");
    item.dataset.eventId = String(event.id);
    item.className = "log-" + event.type;
    var time = document.createElement("time");
    time.textContent = String(event.createdAt || "").slice(11, 19);
    item.appendChild(time);
    if (body.stepId) {
      var step = document.createElement("span");
      step.className = "log-step";
      step.textContent = "[" + body.stepId + "]";
      item.appendChild(document.createTextNode(" "));
      item.appendChild(step);
    }
    var message = document.createElement("span");
    message.className = "log-message";
    message.textContent = typeof body.message === "string" ? body.message : JSON.stringify(body);
    item.appendChild(document.createTextNode(" "));
    item.appendChild(message);
    log.appendChild(item);
    var empty = document.getElementById("log-empty");
    if (empty) {
      empty.remove();
    }
    if (body.stepId && body.status) {
      var li = stepItem(body.stepId);
      if (li) {
        li.className = "task-step step-" + body.status;
        setStatus(li.querySelector(".step-status"), body.status);
      }
      if (body.status === "processing") {
        setStatus(document.getElementById("task-status"), "processing");
      }
    }
  }

  function handle(message) {
    var event;
    try {
      event = JSON.parse(message.data);
    } catch (e) {
      return;
    }
    if (typeof event.id === "number") {
      if (event.id <= after) {
        return; // already shown (a reconnect can repeat events)
      }
      after = event.id;
    }
    append(event);
    failures = 0;
    if (event.type === "completion") {
      finish((event.body && event.body.status) || "completed");
    }
  }

  // The finished page from the server, swapped in so the output and durations show without a reload.
  function finish(finalStatus) {
    done = true;
    if (source) {
      source.close();
    }
    setStatus(document.getElementById("task-status"), finalStatus);
    fetch(window.location.pathname, { headers: { Accept: "text/html" }, credentials: "same-origin" })
      .then(function (response) {
        if (!response.ok) {
          throw new Error("HTTP " + response.status);
        }
        return response.text();
      })
      .then(function (html) {
        var page = new DOMParser().parseFromString(html, "text/html");
        var fresh = page.getElementById("task");
        if (!fresh) {
          throw new Error("no task on the page");
        }
        var adopted = document.importNode(fresh, true);
        adopted.dataset.followed = finalStatus;
        root.replaceWith(adopted);
        document.title = page.title;
      })
      .catch(function () {
        window.location.reload();
      });
  }

  function connect() {
    var url = "/api/scaffolder/v2/tasks/" + encodeURIComponent(taskId) + "/eventstream";
    if (after >= 0) {
      url += "?after=" + after; // none rendered yet: the stream starts at the first event
    }
    source = new EventSource(url);
    source.addEventListener("open", function () {
      root.dataset.live = "connected";
      var note = document.getElementById("live-note");
      if (note) {
        note.textContent = "Following the run live.";
      }
    });
    ["log", "cancelled", "recovered", "completion"].forEach(function (type) {
      source.addEventListener(type, handle);
    });
    source.addEventListener("error", function () {
      // The browser would reconnect with the first `after`; reconnect with the last event seen instead.
      source.close();
      if (done) {
        return;
      }
      failures += 1;
      root.dataset.live = "reconnecting";
      if (failures <= 5) {
        window.setTimeout(connect, 1000 * failures);
      } else {
        var note = document.getElementById("live-note");
        if (note) {
          note.textContent = "Lost the connection to the server; use Refresh to see the current state.";
        }
      }
    });
  }

  connect();
})();
