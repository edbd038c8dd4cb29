// Package browser tests Shockwave's web pages in a real browser: headless
// Chromium (Debian's chromium package), driven over the DevTools protocol
// with github.com/chromedp/chromedp.
//
// Without Chromium the tests are skipped, except under CI (the CI
// environment variable set), where they fail: .ci/run installs it.
// TestChat drives two chat pages that sign in, TestChatOffline one whose
// network goes offline (emulated) while the other talks, and comes back
// without a reload to every message once, in order, never seen to leave;
// TestChatNATS two pages on two chat nodes that share their rooms through
// a NATS server with JetStream in the test's process, and a third that
// joins later and reads the room's history from the stream;
// TestChatDeflate the chat with permessage-deflate, behind a proxy that
// reads the frames both ways: Chromium agrees on it, and a long message
// leaves the browser compressed and reaches every page compressed and
// whole; TestChatSignIn the sign-in form and refused cookies, TestTLS a page and its WebSockets over https
// and wss with a certificate made at run time, TestGame the game's canvas
// page. With
// SHOCKWAVE_SCREENSHOT=1 they write docs/chat.png (two browsers chatting)
// and docs/game.png (a match with three bots).
//
//	go test ./tests/browser/
//	SHOCKWAVE_SCREENSHOT=1 go test ./tests/browser/
package browser
