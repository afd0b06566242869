// Starts `nnc lsp` for .nn files. The command comes from the nnc.command setting.
"use strict";

const vscode = require("vscode");
const { LanguageClient } = require("vscode-languageclient/node");

let client;

function activate(context) {
  const command = vscode.workspace.getConfiguration("nnc").get("command", "nnc");
  const server = { command, args: ["lsp"] };
  client = new LanguageClient(
    "nnc",
    "nnc language server",
    { run: server, debug: server },
    { documentSelector: [{ scheme: "file", language: "nnc" }, { scheme: "untitled", language: "nnc" }] }
  );
  context.subscriptions.push(client);
  return client.start();
}

function deactivate() {
  return client ? client.stop() : undefined;
}

module.exports = { activate, deactivate };
