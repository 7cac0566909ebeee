/*
 * "Request export / 申请导出", the "Export requests / 导出申请" panel and the project strip: a
 * JupyterLab 4 federated extension written by hand (no bundler, nothing fetched at build or run
 * time), like enclave-runs. JupyterLab loads this file with a <script> tag and calls the container
 * it defines: init(shareScope), then get('./extension'), whose factory returns the module with the
 * plugin as its default export. The only modules it takes from JupyterLab's share scope are the ones
 * JupyterLab itself already loaded (@lumino/widgets for the panel and the strip, and an icon of
 * @jupyterlab/ui-components); without them the command still works.
 *
 * Everything goes to the single-user server (the enclave_lockdown server extension):
 *   POST /enclave/exports   {path, justification, revises?, abroad?}: the server reads the file
 *                           from the workspace and submits it to the export review as its user;
 *   GET  /enclave/exports   the user's requests in the project, for the panel;
 *   GET  /enclave/workspace the project's title, access mode and days left, for the strip.
 * Authentication is the page's own session cookie; the _xsrf cookie goes back as X-XSRFToken.
 * Text is always set as text (textContent), never as markup.
 *
 * JupyterLab serves static/ as immutable: after an edit, run labextension/rehash.py.
 */
(function () {
  'use strict';

  var NAME = 'enclave-exports';
  var PLUGIN_ID = 'enclave-exports:plugin';
  var COMMAND = 'enclave:request-export';
  var SHOW_COMMAND = 'enclave:show-export-requests';
  var LABEL = 'Request export / 申请导出';
  var PANEL_TITLE = 'Export requests / 导出申请';
  var PANEL_ID = 'enclave-exports-panel';
  var STRIP_ID = 'enclave-workspace-strip';
  var FILE_SELECTOR = '.jp-DirListing-item[data-isdir="false"]';
  var POLL_VISIBLE_MS = 10000;
  var POLL_HIDDEN_MS = 30000;
  var STRIP_REFRESH_MS = 600000;
  var WARN_DAYS = 7;
  var STATE_ZH = {
    draft: '草稿',
    submitted: '已提交',
    checked: '已检查',
    in_review: '审核中',
    approved: '已批准',
    rejected: '已拒绝',
    changes_requested: '需要修改',
    released: '已发布',
    withdrawn: '已撤回'
  };
  var ACCESS_TEXT = {
    aggregate: 'aggregate only / 仅限汇总',
    rows: 'row-level / 行级数据'
  };

  var shared = {};

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

  function baseUrl() {
    var url = pageConfig().baseUrl || '/';
    return url.charAt(url.length - 1) === '/' ? url : url + '/';
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

  function errorLines(body, status) {
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

  function callServer(method, route, body) {
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
    return fetch(baseUrl() + route, init).then(function (response) {
      return response.text().then(function (text) {
        var data = null;
        try {
          data = JSON.parse(text);
        } catch (error) {
          data = null;
        }
        if (!response.ok) {
          var failure = new Error('enclave exports: HTTP ' + response.status);
          failure.lines = errorLines(data, response.status);
          throw failure;
        }
        return data;
      });
    });
  }

  // ---- small DOM helpers ---------------------------------------------------------------------

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

  function stateText(state) {
    state = String(state || '');
    return state + ' / ' + (STATE_ZH[state] || state);
  }

  function notify(app, message, type) {
    if (app.commands.hasCommand('apputils:notify')) {
      app.commands
        .execute('apputils:notify', { message: message, type: type, options: { autoClose: 15000 } })
        .catch(function () {});
    }
  }

  // ---- which file ----------------------------------------------------------------------------

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

  // The file the command is about: its argument, else the right-clicked (selected) file.
  function targetPath(app, args) {
    if (typeof args.path === 'string' && args.path) {
      return args.path;
    }
    var browser = fileBrowser(app);
    if (browser) {
      for (var model of browser.selectedItems()) {
        if (model.type !== 'directory') {
          return model.path;
        }
      }
    }
    return '';
  }

  // ---- the dialog ----------------------------------------------------------------------------

  function labelled(text, control) {
    var label = element('label', 'enclave-exports-field');
    label.style.display = 'block';
    label.style.marginTop = '0.75em';
    label.appendChild(element('span', '', text));
    label.appendChild(element('br'));
    label.appendChild(control);
    return label;
  }

  function openDialog(path, revisable) {
    var previous = document.activeElement;
    var overlay = element('div', 'jp-Dialog jp-ThemedContainer enclave-exports-dialog');
    overlay.id = 'enclave-exports-dialog';
    overlay.style.cssText =
      'position: fixed; inset: 0; z-index: 10000; display: flex; align-items: center; justify-content: center;';
    var content = element('div', 'jp-Dialog-content');
    content.setAttribute('role', 'dialog');
    content.setAttribute('aria-modal', 'true');
    content.setAttribute('aria-labelledby', 'enclave-exports-dialog-title');
    content.style.minWidth = '30em';
    var header = element('h2', 'jp-Dialog-header', LABEL);
    header.id = 'enclave-exports-dialog-title';
    header.style.fontSize = 'var(--jp-ui-font-size2, 1.2em)';
    header.style.margin = '0';
    var body = element('div', 'jp-Dialog-body');
    body.appendChild(element('p', 'enclave-exports-file', 'File / 文件: ' + path));
    body.appendChild(
      element(
        'p',
        '',
        'The committee reviews the file as it is now in your workspace. / 审核委员会将审核该文件在工作区中的当前版本。'
      )
    );
    var justification = element('textarea', 'jp-mod-styled');
    justification.id = 'enclave-exports-justification';
    justification.rows = 4;
    justification.required = true;
    justification.setAttribute('aria-required', 'true');
    justification.style.width = '100%';
    body.appendChild(labelled('Justification (required) / 导出理由（必填）', justification));
    var revises = element('select', 'jp-mod-styled');
    revises.id = 'enclave-exports-revises';
    revises.appendChild(element('option', '', 'None: a new request / 无：新的申请'));
    revises.options[0].value = '';
    revisable.forEach(function (request) {
      var option = element('option', '', request.id + ' (v' + request.version + ', ' + stateText(request.state) + ')');
      option.value = request.id;
      revises.appendChild(option);
    });
    revises.disabled = revisable.length === 0;
    body.appendChild(labelled('Revises (a request with changes requested) / 修订（被要求修改的申请）', revises));
    var abroad = element('input');
    abroad.type = 'checkbox';
    abroad.id = 'enclave-exports-abroad';
    var abroadLabel = element('label', 'enclave-exports-field');
    abroadLabel.style.display = 'block';
    abroadLabel.style.marginTop = '0.75em';
    abroadLabel.appendChild(abroad);
    abroadLabel.appendChild(
      element('span', '', ' The results will leave the country / 结果将被传输出境')
    );
    body.appendChild(abroadLabel);
    var status = element('div', 'enclave-exports-status');
    status.id = 'enclave-exports-status';
    status.setAttribute('role', 'status');
    status.setAttribute('aria-live', 'polite');
    status.style.whiteSpace = 'pre-wrap';
    status.style.marginTop = '0.75em';
    body.appendChild(status);
    var footer = element('div', 'jp-Dialog-footer');
    footer.style.display = 'flex';
    footer.style.justifyContent = 'flex-end';
    footer.style.gap = '8px';
    var cancel = button('Cancel / 取消', false);
    cancel.id = 'enclave-exports-cancel';
    var submit = button('Submit for review / 提交审核', true);
    submit.id = 'enclave-exports-submit';
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
      if (previous && typeof previous.focus === 'function') {
        previous.focus();
      }
    }
    function focusable() {
      return Array.prototype.filter.call(
        content.querySelectorAll('textarea, select, input, button, a[href]'),
        function (node) {
          return !node.disabled && node.style.display !== 'none';
        }
      );
    }
    cancel.addEventListener('click', close);
    overlay.addEventListener('keydown', function (event) {
      event.stopPropagation(); // keep JupyterLab's shortcuts out of the form
      if (event.key === 'Escape') {
        close();
      } else if (event.key === 'Tab') {
        var nodes = focusable();
        var first = nodes[0];
        var last = nodes[nodes.length - 1];
        if (event.shiftKey && document.activeElement === first) {
          event.preventDefault();
          last.focus();
        } else if (!event.shiftKey && document.activeElement === last) {
          event.preventDefault();
          first.focus();
        }
      }
    });
    setTimeout(function () {
      justification.focus();
    }, 0);
    return {
      justification: justification,
      revises: revises,
      abroad: abroad,
      status: status,
      submit: submit,
      cancel: cancel,
      close: close
    };
  }

  function showLines(node, lines, state) {
    node.textContent = '';
    node.setAttribute('data-state', state);
    lines.forEach(function (line) {
      node.appendChild(element('div', '', line));
    });
  }

  // ---- the panel -----------------------------------------------------------------------------

  function Requests(app) {
    this.app = app;
    this.known = null; // id -> state, once the first list came
    this.rows = [];
    this.timer = null;
    this.panel = null;
    this.list = null;
    this.note = null;
    this.announce = null;
  }

  Requests.prototype.revisable = function () {
    return this.rows.filter(function (row) {
      return row.state === 'changes_requested';
    });
  };

  Requests.prototype.build = function (Widget, icon) {
    var self = this;
    var panel = new Widget();
    panel.id = PANEL_ID;
    panel.addClass('enclave-exports-panel');
    panel.title.caption = PANEL_TITLE;
    if (icon) {
      panel.title.icon = icon;
    } else {
      panel.title.label = PANEL_TITLE;
    }
    var node = panel.node;
    node.setAttribute('role', 'region');
    node.setAttribute('aria-label', PANEL_TITLE);
    node.style.overflowY = 'auto';
    node.style.padding = '8px';
    node.style.background = 'var(--jp-layout-color1)';
    node.style.color = 'var(--jp-ui-font-color1)';
    var heading = element('h2', '', PANEL_TITLE);
    heading.style.fontSize = 'var(--jp-ui-font-size2, 1.2em)';
    node.appendChild(heading);
    var refresh = element('button', 'jp-mod-styled jp-mod-reject', 'Refresh / 刷新');
    refresh.type = 'button';
    refresh.id = 'enclave-exports-refresh';
    refresh.addEventListener('click', function () {
      self.refresh();
    });
    node.appendChild(refresh);
    this.note = element('p', 'enclave-exports-note');
    this.note.id = 'enclave-exports-note';
    node.appendChild(this.note);
    this.list = element('ul', 'enclave-exports-list');
    this.list.id = 'enclave-exports-list';
    this.list.setAttribute('aria-label', PANEL_TITLE);
    this.list.style.listStyle = 'none';
    this.list.style.padding = '0';
    node.appendChild(this.list);
    this.announce = element('div', 'enclave-exports-announce');
    this.announce.id = 'enclave-exports-announce';
    this.announce.setAttribute('role', 'status');
    this.announce.setAttribute('aria-live', 'polite');
    node.appendChild(this.announce);
    panel.onAfterShow = function () {
      self.refresh();
    };
    this.panel = panel;
    return panel;
  };

  Requests.prototype.render = function () {
    if (!this.list) {
      return;
    }
    this.list.textContent = '';
    this.note.textContent = this.rows.length
      ? this.rows.length + ' request(s) / 个申请'
      : 'No export requests yet: right-click a file and choose “Request export”. / 暂无导出申请：右键单击文件并选择“申请导出”。';
    var list = this.list;
    this.rows.forEach(function (row) {
      var item = element('li', 'enclave-exports-item');
      item.setAttribute('data-request-id', String(row.id));
      item.setAttribute('data-state', String(row.state));
      item.style.borderBottom = '1px solid var(--jp-border-color2)';
      item.style.padding = '4px 0';
      var title = element('div', 'enclave-exports-id', String(row.id) + ' · v' + row.version);
      title.style.fontWeight = 'bold';
      item.appendChild(title);
      item.appendChild(element('div', 'enclave-exports-state', 'State / 状态: ' + stateText(row.state)));
      item.appendChild(element('div', '', 'Files / 文件数: ' + row.files));
      item.appendChild(element('div', '', 'Updated / 更新于: ' + String(row.updated_at || '').slice(0, 19)));
      list.appendChild(item);
    });
  };

  Requests.prototype.changed = function (rows) {
    var lines = [];
    var known = this.known;
    if (known !== null) {
      rows.forEach(function (row) {
        if (known[row.id] !== undefined && known[row.id] !== row.state) {
          lines.push('Export request / 导出申请 ' + row.id + ': ' + stateText(row.state));
        }
      });
    }
    var next = {};
    rows.forEach(function (row) {
      next[row.id] = row.state;
    });
    this.known = next;
    return lines;
  };

  Requests.prototype.refresh = function () {
    var self = this;
    return callServer('GET', 'enclave/exports').then(
      function (data) {
        self.rows = (data && Array.isArray(data.requests)) ? data.requests : [];
        var lines = self.changed(self.rows);
        self.render();
        lines.forEach(function (line) {
          var type = /approved|released/.test(line) ? 'success' : /rejected/.test(line) ? 'error' : 'info';
          notify(self.app, line, type);
        });
        if (lines.length && self.announce) {
          self.announce.textContent = lines.join('\n');
        }
        return self.rows;
      },
      function (error) {
        if (self.note) {
          self.note.textContent = (error.lines || [String(error.message || error)]).join('\n');
        }
        return self.rows;
      }
    );
  };

  Requests.prototype.poll = function () {
    var self = this;
    var visible = !!(this.panel && this.panel.isVisible);
    this.timer = setTimeout(function () {
      self.refresh().then(function () {
        self.poll();
      });
    }, visible ? POLL_VISIBLE_MS : POLL_HIDDEN_MS);
  };

  // ---- the header strip ----------------------------------------------------------------------

  function stripTexts(facts) {
    var days = Number(facts.days_left);
    var left;
    if (days < 0) {
      left = 'ended on ' + facts.period_end + ' / 已于 ' + facts.period_end + ' 结束';
    } else if (days === 0) {
      left = 'ends today / 今天结束';
    } else {
      left = days + (days === 1 ? ' day left' : ' days left') + ' / 剩余 ' + days + ' 天';
    }
    if (days >= 0 && days <= WARN_DAYS) {
      left = 'Ends soon / 即将结束: ' + left; // said in words, not by colour alone
    }
    return {
      project: 'Project / 项目: ' + facts.project,
      title: String(facts.title || ''),
      access: 'Access / 访问: ' + (ACCESS_TEXT[facts.access] || String(facts.access)),
      days: left,
      end: 'Ends / 结束日期: ' + facts.period_end,
      warning: days <= WARN_DAYS
    };
  }

  function buildStrip(Widget) {
    var strip = new Widget();
    strip.id = STRIP_ID;
    strip.addClass('enclave-workspace-strip');
    var node = strip.node;
    node.setAttribute('role', 'region');
    node.setAttribute('aria-label', 'Project / 项目');
    node.style.display = 'flex';
    node.style.alignItems = 'center';
    node.style.gap = '1.5em';
    node.style.padding = '0 8px';
    node.style.margin = '0 8px';
    node.style.minWidth = '0';
    node.style.overflow = 'hidden';
    node.style.borderRadius = '3px';
    node.style.fontSize = 'var(--jp-ui-font-size1)';
    node.style.color = 'var(--jp-ui-font-color1)';
    node.style.minHeight = '24px';
    var parts = {};
    ['project', 'title', 'access', 'days', 'end'].forEach(function (key) {
      parts[key] = element('span', 'enclave-workspace-' + key);
      parts[key].style.whiteSpace = 'nowrap';
      node.appendChild(parts[key]);
    });
    parts.title.style.overflow = 'hidden';
    parts.title.style.textOverflow = 'ellipsis';
    parts.title.style.minWidth = '4em';
    parts.title.style.flex = '0 1 auto';
    parts.project.textContent = 'Project / 项目: …';
    function refresh() {
      return callServer('GET', 'enclave/workspace').then(
        function (facts) {
          var texts = stripTexts(facts || {});
          parts.project.textContent = texts.project;
          parts.title.textContent = texts.title;
          parts.title.setAttribute('title', texts.title);
          parts.access.textContent = texts.access;
          parts.days.textContent = texts.days;
          parts.end.textContent = texts.end;
          node.setAttribute('data-warning', texts.warning ? 'true' : 'false');
          node.style.background = texts.warning ? 'var(--jp-warn-color2, #f0ad4e)' : '';
          parts.days.style.fontWeight = texts.warning ? 'bold' : '';
          parts.days.style.color = texts.warning ? 'var(--jp-ui-font-color0)' : '';
        },
        function (error) {
          parts.project.textContent = (error.lines || [String(error.message || error)]).join(' ');
          node.setAttribute('data-warning', 'unknown');
        }
      );
    }
    return { widget: strip, refresh: refresh };
  }

  // ---- the command ---------------------------------------------------------------------------

  function execute(app, requests, args) {
    var path = targetPath(app, args || {});
    if (!path) {
      notify(app, 'Choose a file first / 请先选择一个文件', 'warning');
      return Promise.resolve(null);
    }
    return requests.refresh().then(function () {
      var dialog = openDialog(path, requests.revisable());
      dialog.submit.addEventListener('click', function () {
        var justification = dialog.justification.value.trim();
        if (!justification) {
          showLines(
            dialog.status,
            ['Say why the file must leave the enclave', '请说明导出该文件的理由'],
            'invalid'
          );
          dialog.justification.setAttribute('aria-invalid', 'true');
          dialog.justification.focus();
          return;
        }
        var body = { path: path, justification: justification, abroad: dialog.abroad.checked };
        if (dialog.revises.value) {
          body.revises = dialog.revises.value;
        }
        dialog.submit.disabled = true;
        showLines(dialog.status, ['Submitting… / 正在提交…'], 'submitting');
        callServer('POST', 'enclave/exports', body).then(
          function (result) {
            var line = 'Export request / 导出申请 ' + result.request + ': ' + stateText(result.state);
            showLines(dialog.status, [line], 'submitted');
            dialog.status.setAttribute('data-request-id', String(result.request));
            dialog.submit.style.display = 'none';
            dialog.justification.disabled = true;
            dialog.cancel.querySelector('.jp-Dialog-buttonLabel').textContent = 'Close / 关闭';
            dialog.cancel.focus();
            notify(app, line, 'success');
            requests.refresh();
          },
          function (error) {
            var lines = error.lines || [String(error.message || error), '提交失败'];
            showLines(dialog.status, lines, 'failed');
            dialog.submit.disabled = false;
            notify(app, lines.join('\n'), 'error');
          }
        );
      });
      return dialog;
    });
  }

  // ---- the plugin and the container ----------------------------------------------------------

  var plugin = {
    id: PLUGIN_ID,
    description: 'Request an export review of a workspace file; follow your requests; see the project',
    autoStart: true,
    requires: [],
    activate: function (app) {
      var requests = new Requests(app);
      app.commands.addCommand(COMMAND, {
        label: LABEL,
        caption: 'Submit this file to the export review committee / 将此文件提交导出审核委员会审核',
        execute: function (args) {
          return execute(app, requests, args);
        }
      });
      app.contextMenu.addItem({ command: COMMAND, selector: FILE_SELECTOR, rank: 91 });
      var Widget = shared['@lumino/widgets'] && shared['@lumino/widgets'].Widget;
      if (Widget) {
        var ui = shared['@jupyterlab/ui-components'] || {};
        app.shell.add(requests.build(Widget, ui.fileUploadIcon || ui.listIcon || null), 'left', { rank: 900 });
        app.commands.addCommand(SHOW_COMMAND, {
          label: PANEL_TITLE,
          execute: function () {
            app.shell.activateById(PANEL_ID);
          }
        });
        var strip = buildStrip(Widget);
        app.shell.add(strip.widget, 'top', { rank: 900 });
        strip.refresh();
        setInterval(strip.refresh, STRIP_REFRESH_MS);
      }
      requests.refresh().then(function () {
        requests.poll();
      });
    }
  };

  // A module JupyterLab already shares: the loaded version if any, else the newest.
  function consume(scope, name) {
    var versions = (scope && scope[name]) || {};
    var keys = Object.keys(versions);
    var loaded = keys.filter(function (key) {
      return versions[key] && versions[key].loaded;
    });
    var pick = (loaded.length ? loaded : keys).sort().pop();
    if (!pick) {
      return Promise.resolve(null);
    }
    return Promise.resolve()
      .then(function () {
        return versions[pick].get();
      })
      .then(function (factory) {
        return typeof factory === 'function' ? factory() : factory;
      })
      .catch(function () {
        return null;
      });
  }

  var shareScope = null;

  var container = {
    get: function (module) {
      if (module === './extension' || module === './index') {
        return Promise.all([
          consume(shareScope, '@lumino/widgets'),
          consume(shareScope, '@jupyterlab/ui-components')
        ]).then(function (modules) {
          shared['@lumino/widgets'] = modules[0];
          shared['@jupyterlab/ui-components'] = modules[1];
          return function () {
            return { __esModule: true, default: [plugin] };
          };
        });
      }
      return Promise.reject(new Error('Module "' + module + '" does not exist in container.'));
    },
    init: function (scope) {
      shareScope = scope || null;
      return Promise.resolve();
    }
  };

  window._JUPYTERLAB = window._JUPYTERLAB || {};
  window._JUPYTERLAB[NAME] = container;
})();
