/*
 * "Run as batch job / 作为批处理作业运行": a JupyterLab 4 federated extension written by hand
 * (no bundler, nothing fetched at build or run time). JupyterLab loads this file with a <script>
 * tag, then calls the container that it defines: init(shareScope) and get('./extension'), whose
 * factory returns the module with the plugin as its default export. The plugin needs no shared
 * module: it uses only the application object that JupyterLab passes to activate().
 *
 * The command submits a saved notebook to the single-user server's POST /enclave/runs (the
 * enclave_lockdown server extension), which reads it through the contents manager and sends it
 * to the runs service. Authentication is the page's own session cookie, and the _xsrf cookie
 * goes back as X-XSRFToken, as JupyterLab's own requests do under JupyterHub.
 *
 * JupyterLab serves everything under static/ as immutable (cached for a year), so this file's name
 * carries the start of its sha256, like a bundler's output: after an edit, rename it and its
 * jupyterlab._build.load in package.json (tests/runs/test_labextension.py names the new hash).
 */
(function () {
  'use strict';

  var NAME = 'enclave-runs';
  var PLUGIN_ID = 'enclave-runs:plugin';
  var COMMAND = 'enclave:run-as-batch-job';
  var LABEL = 'Run as batch job / 作为批处理作业运行';
  var KEYS = ['Accel Alt B'];
  var NOTEBOOK_SELECTOR = '.jp-Notebook';
  var FILE_SELECTOR = '.jp-DirListing-item[data-file-type="notebook"]';
  var STATE_ZH = {
    queued: '排队中',
    running: '运行中',
    succeeded: '已成功',
    failed: '失败',
    timed_out: '超时',
    cancelled: '已取消'
  };

  // ---- the server ----------------------------------------------------------------------------

  var configData = null;

  function pageConfig() {
    if (configData === null) {
      var node = document.getElementById('jupyter-config-data');
      try {
        configData = node ? JSON.parse(node.textContent || '{}') : {};
      } catch (error) {
        configData = {};
      }
    }
    return configData;
  }

  function withSlash(url) {
    return url.charAt(url.length - 1) === '/' ? url : url + '/';
  }

  function baseUrl() {
    return withSlash(pageConfig().baseUrl || '/');
  }

  function cookie(name) {
    var parts = document.cookie ? document.cookie.split(';') : [];
    for (var i = 0; i < parts.length; i++) {
      var part = parts[i].trim();
      if (part.indexOf(name + '=') === 0) {
        return decodeURIComponent(part.slice(name.length + 1));
      }
    }
    return '';
  }

  function runsPageUrl(runId) {
    // The runs service's page of the run, at the hub's root (/hub/ -> /services/runs/runs/ID).
    var hubPrefix = pageConfig().hubPrefix;
    if (!hubPrefix) {
      return '';
    }
    var root = withSlash(hubPrefix).replace(/hub\/$/, '');
    return root + 'services/runs/runs/' + encodeURIComponent(runId);
  }

  function errorText(body, status) {
    var errors = body && Array.isArray(body.errors) ? body.errors : [];
    if (!errors.length) {
      return ['HTTP ' + status, 'HTTP 错误 ' + status];
    }
    var en = [];
    var zh = [];
    errors.forEach(function (entry) {
      var message = (entry && entry.message) || {};
      en.push('[' + entry.code + '] ' + (message.en || ''));
      zh.push(message.zh || '');
    });
    return [en.join('\n'), zh.join('\n')];
  }

  function callServer(method, body) {
    var headers = { Accept: 'application/json' };
    var xsrf = cookie('_xsrf');
    if (xsrf) {
      headers['X-XSRFToken'] = xsrf;
    }
    var init = { method: method, headers: headers, credentials: 'same-origin' };
    if (body !== undefined) {
      headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    return fetch(baseUrl() + 'enclave/runs', init).then(function (response) {
      return response.text().then(function (text) {
        var data = null;
        try {
          data = JSON.parse(text);
        } catch (error) {
          data = null;
        }
        if (!response.ok) {
          var failure = new Error('enclave runs: HTTP ' + response.status);
          failure.lines = errorText(data, response.status);
          throw failure;
        }
        return data;
      });
    });
  }

  // ---- which notebook ------------------------------------------------------------------------

  function hasClass(className) {
    return function (node) {
      return !!(node.classList && node.classList.contains(className));
    };
  }

  function fileBrowser(app) {
    var found = null;
    var widgets = app.shell.widgets ? app.shell.widgets('left') : [];
    for (var widget of widgets) {
      if (widget && typeof widget.selectedItems === 'function') {
        if (widget.id === 'filebrowser' || found === null) {
          found = widget;
        }
      }
    }
    return found;
  }

  function notebookWidgetAt(app, node) {
    var widgets = app.shell.widgets ? app.shell.widgets('main') : [];
    for (var widget of widgets) {
      if (widget && widget.node && widget.node.contains(node) && widget.context) {
        return widget;
      }
    }
    return null;
  }

  function isNotebookPath(path) {
    return typeof path === 'string' && /\.ipynb$/.test(path);
  }

  // The notebooks the command is about: from its arguments, the right-clicked file browser items,
  // the right-clicked notebook, or (from the keyboard) the current notebook.
  function targets(app, args) {
    if (isNotebookPath(args.path)) {
      return { paths: [args.path], widget: null };
    }
    if (args.source === 'context-menu') {
      var item = app.contextMenuHitTest(hasClass('jp-DirListing-item'));
      if (item) {
        var browser = fileBrowser(app);
        var paths = [];
        if (browser) {
          for (var model of browser.selectedItems()) {
            if (model.type === 'notebook' || isNotebookPath(model.path)) {
              paths.push(model.path);
            }
          }
        }
        return { paths: paths, widget: null };
      }
      var inside = app.contextMenuHitTest(hasClass('jp-Notebook'));
      var widget = inside ? notebookWidgetAt(app, inside) : null;
      if (widget && isNotebookPath(widget.context.path)) {
        return { paths: [widget.context.path], widget: widget };
      }
    }
    var current = app.shell.currentWidget;
    if (current && current.context && isNotebookPath(current.context.path)) {
      return { paths: [current.context.path], widget: current };
    }
    return { paths: [], widget: null };
  }

  // ---- the dialog ----------------------------------------------------------------------------

  function element(tag, className, text) {
    var node = document.createElement(tag);
    if (className) {
      node.className = className;
    }
    if (text !== undefined) {
      node.textContent = text;
    }
    return node;
  }

  function button(label, accept) {
    var node = element(
      'button',
      'jp-Dialog-button jp-mod-styled ' + (accept ? 'jp-mod-accept' : 'jp-mod-reject')
    );
    node.type = 'button';
    node.appendChild(element('div', 'jp-Dialog-buttonLabel', label));
    return node;
  }

  // A dialog in JupyterLab's own look; the ids are what the browser test looks for.
  function openDialog(paths) {
    var overlay = element('div', 'jp-Dialog jp-ThemedContainer enclave-runs-dialog');
    overlay.id = 'enclave-runs-dialog';
    // JupyterLab's dialog styles differ across 4.x: the overlay's place is set here, not left to them.
    overlay.style.cssText =
      'position: fixed; inset: 0; z-index: 10000; display: flex; align-items: center; justify-content: center;';
    var content = element('div', 'jp-Dialog-content');
    content.setAttribute('role', 'dialog');
    content.setAttribute('aria-modal', 'true');
    content.style.minWidth = '28em';
    var header = element('div', 'jp-Dialog-header', LABEL);
    var body = element('div', 'jp-Dialog-body');
    body.appendChild(element('p', '', 'Notebook / 笔记本: ' + paths.join(', ')));
    var label = element('label', '', 'Parameters (JSON) / 参数（JSON）');
    var input = element('textarea', 'jp-mod-styled');
    input.id = 'enclave-runs-parameters';
    input.rows = 4;
    input.style.width = '100%';
    input.style.fontFamily = 'var(--jp-code-font-family, monospace)';
    input.value = '{}';
    label.appendChild(element('br'));
    label.appendChild(input);
    body.appendChild(label);
    var status = element('div', 'enclave-runs-status');
    status.id = 'enclave-runs-status';
    status.style.whiteSpace = 'pre-wrap';
    status.style.marginTop = '0.5em';
    body.appendChild(status);
    var footer = element('div', 'jp-Dialog-footer');
    var cancel = button('Cancel / 取消', false);
    cancel.id = 'enclave-runs-cancel';
    var submit = button('Submit / 提交', true);
    submit.id = 'enclave-runs-submit';
    footer.appendChild(cancel);
    footer.appendChild(submit);
    content.appendChild(header);
    content.appendChild(body);
    content.appendChild(footer);
    overlay.appendChild(content);
    document.body.appendChild(overlay);

    function close() {
      if (overlay.parentNode) {
        overlay.parentNode.removeChild(overlay);
      }
    }
    cancel.addEventListener('click', close);
    overlay.addEventListener('keydown', function (event) {
      event.stopPropagation(); // keep JupyterLab's shortcuts out of the text box
      if (event.key === 'Escape') {
        close();
      }
    });
    setTimeout(function () {
      input.focus();
    }, 0);
    return { overlay: overlay, input: input, status: status, submit: submit, cancel: cancel, close: close };
  }

  function showLines(node, lines, state) {
    node.textContent = '';
    node.setAttribute('data-state', state);
    lines.forEach(function (line) {
      node.appendChild(element('div', '', line));
    });
  }

  function notify(app, message, type) {
    if (app.commands.hasCommand('apputils:notify')) {
      app.commands
        .execute('apputils:notify', { message: message, type: type, options: { autoClose: 10000 } })
        .catch(function () {});
    }
  }

  function submitAll(app, dialog, paths, parameters) {
    dialog.submit.disabled = true;
    showLines(dialog.status, ['Submitting… / 正在提交…'], 'submitting');
    var done = [];
    var chain = Promise.resolve();
    paths.forEach(function (path) {
      chain = chain.then(function () {
        return callServer('POST', { path: path, parameters: parameters }).then(function (run) {
          done.push(run);
        });
      });
    });
    return chain.then(
      function () {
        var lines = [];
        done.forEach(function (run) {
          var state = String(run.state);
          lines.push(
            'Run / 作业 ' + run.id + ': ' + state + ' / ' + (STATE_ZH[state] || state) +
              ' (' + ((run.notebook && run.notebook.name) || '') + ')'
          );
        });
        showLines(dialog.status, lines, 'submitted');
        dialog.status.setAttribute('data-run-ids', done.map(function (run) { return run.id; }).join(' '));
        done.forEach(function (run) {
          var page = runsPageUrl(run.id);
          if (page) {
            var link = element('a', '', 'Open the run’s page / 打开作业页面: ' + run.id);
            link.href = page;
            link.target = '_blank';
            link.rel = 'noopener';
            dialog.status.appendChild(link);
          }
        });
        dialog.submit.style.display = 'none';
        dialog.input.disabled = true;
        dialog.cancel.querySelector('.jp-Dialog-buttonLabel').textContent = 'Close / 关闭';
        notify(app, lines.join('\n'), 'success');
      },
      function (error) {
        var lines = error.lines || [String(error.message || error), '提交失败'];
        showLines(dialog.status, lines, 'failed');
        dialog.submit.disabled = false;
        notify(app, lines.join('\n'), 'error');
      }
    );
  }

  function parseParameters(text) {
    var value = JSON.parse(text.trim() || '{}');
    if (value === null || typeof value !== 'object' || Array.isArray(value)) {
      throw new Error('not an object');
    }
    return value;
  }

  function execute(app, args) {
    var found = targets(app, args || {});
    if (!found.paths.length) {
      notify(app, 'Choose a notebook first / 请先选择一个笔记本', 'warning');
      return Promise.resolve(null);
    }
    var saved = Promise.resolve();
    var context = found.widget && found.widget.context;
    if (context && context.model && context.model.dirty && typeof context.save === 'function') {
      saved = context.save(); // a batch run runs the saved file: save what is on the screen first
    }
    return saved.then(function () {
      var dialog = openDialog(found.paths);
      dialog.submit.addEventListener('click', function () {
        var parameters;
        try {
          parameters = parseParameters(dialog.input.value);
        } catch (error) {
          showLines(
            dialog.status,
            ['Parameters must be a JSON object, e.g. {"year": 2024}', '参数必须是 JSON 对象，例如 {"year": 2024}'],
            'invalid'
          );
          return;
        }
        submitAll(app, dialog, found.paths, parameters);
      });
      return dialog;
    });
  }

  // ---- the plugin and the container ----------------------------------------------------------

  var plugin = {
    id: PLUGIN_ID,
    description: 'Run a notebook as a batch job in the enclave (papermill, a fresh locked-down container)',
    autoStart: true,
    requires: [],
    activate: function (app) {
      app.commands.addCommand(COMMAND, {
        label: LABEL,
        caption: 'Run the saved notebook with papermill in a fresh workspace container / ' +
          '在新的工作区容器中用 papermill 运行已保存的笔记本',
        execute: function (args) {
          return execute(app, args);
        }
      });
      app.contextMenu.addItem({
        command: COMMAND,
        selector: NOTEBOOK_SELECTOR,
        rank: 90,
        args: { source: 'context-menu' }
      });
      app.contextMenu.addItem({
        command: COMMAND,
        selector: FILE_SELECTOR,
        rank: 90,
        args: { source: 'context-menu' }
      });
      app.commands.addKeyBinding({
        command: COMMAND,
        keys: KEYS,
        selector: NOTEBOOK_SELECTOR,
        args: { source: 'keyboard' }
      });
      window.enclaveRuns = { command: COMMAND, list: function () { return callServer('GET'); } };
    }
  };

  var container = {
    get: function (module) {
      if (module === './extension' || module === './index') {
        return Promise.resolve(function () {
          return { __esModule: true, default: [plugin] };
        });
      }
      return Promise.reject(new Error('Module "' + module + '" does not exist in container.'));
    },
    init: function () {
      // This container shares no module and consumes none: nothing to initialise.
      return Promise.resolve();
    }
  };

  window._JUPYTERLAB = window._JUPYTERLAB || {};
  window._JUPYTERLAB[NAME] = container;
})();
