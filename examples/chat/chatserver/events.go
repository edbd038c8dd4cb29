package chatserver

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/shockwave-go/shockwave/codec"
)

// The events of the chat protocol (see the package documentation).
const (
	EventJoin     = "chat.join"     // client: join a room under the signed name
	EventLeave    = "chat.leave"    // client: leave a room
	EventSend     = "chat.send"     // client: a message to the room
	EventPrivate  = "chat.private"  // both ways: a message between two members
	EventTyping   = "chat.typing"   // both ways: someone is typing
	EventRooms    = "chat.rooms"    // client request: the room list
	EventState    = "chat.state"    // server: the room as a client joins it
	EventMsg      = "chat.msg"      // server: a message in a room
	EventPresence = "chat.presence" // server: someone joined or left
)

// SendRequest is the payload of chat.send.
type SendRequest struct {
	Text string `json:"text"`
}

// PrivateRequest is the payload of chat.private from a client.
type PrivateRequest struct {
	To   string `json:"to"`
	Text string `json:"text"`
}

// Message is a message said in a room: the payload of chat.msg, and what
// the history holds.
type Message struct {
	ID   uint64 `json:"id"` // counts from 1 in each room
	From string `json:"from"`
	Text string `json:"text"`
	At   int64  `json:"at"` // Unix milliseconds
}

// Private is a private message, sent to its recipient and back to its
// sender.
type Private struct {
	Room string `json:"room"`
	From string `json:"from"`
	To   string `json:"to"`
	Text string `json:"text"`
	At   int64  `json:"at"`
}

// State is what a client gets as it joins a room: its name (the signed
// one), who is in it, the last messages, and the longest message allowed.
type State struct {
	Room      string    `json:"room"`
	Nick      string    `json:"nick"`
	Members   []string  `json:"members"`
	History   []Message `json:"history"`
	MaxLength int       `json:"maxLength"`
}

// Presence tells a room that someone joined or left it.
type Presence struct {
	Nick   string `json:"nick"`
	Action string `json:"action"` // "join" or "leave"
	Count  int    `json:"count"`  // members after the change
}

// Typing tells a room that a member is typing.
type Typing struct {
	Nick string `json:"nick"`
}

// RoomInfo is an entry of the room list.
type RoomInfo struct {
	Name    string `json:"name"`
	Members int    `json:"members"`
}

// The error codes of the chat, besides the Router's own (codec.Code*).
const (
	CodeBadRoom      = "bad_room"       // the room's name is empty, too long or has control characters
	CodeNotJoined    = "not_joined"     // the event needs the client to be in the room
	CodeEmpty        = "empty"          // the message has no text
	CodeTooLong      = "too_long"       // the message is longer than the limit
	CodeNoSuchUser   = "no_such_user"   // no member of the room has that nickname
	CodeTooManyRooms = "too_many_rooms" // the client, or the server, has too many rooms
)

// Limits of names, in characters.
const (
	maxNick = 32 // a user's name, signed in with POST /login
	maxRoom = 40
)

func chatError(code, format string, args ...any) *codec.Error {
	return &codec.Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// checkName trims a user's name or a room's name and checks it: 1 to max
// characters, no control or invisible formatting characters.
func checkName(what, code, name string, max int) (string, error) {
	name = strings.TrimSpace(name)
	n := utf8.RuneCountInString(name)
	switch {
	case n == 0:
		return "", chatError(code, "the %s is empty", what)
	case n > max:
		return "", chatError(code, "the %s is %d characters long; at most %d are allowed", what, n, max)
	case !utf8.ValidString(name) || strings.IndexFunc(name, func(r rune) bool {
		return unicode.IsControl(r) || unicode.Is(unicode.Cf, r)
	}) >= 0:
		return "", chatError(code, "the %s has characters that cannot be shown", what)
	}
	return name, nil
}

// checkText checks a message's text: not blank, at most max characters.
func checkText(text string, max int) error {
	if strings.TrimSpace(text) == "" {
		return chatError(CodeEmpty, "the message is empty")
	}
	if n := utf8.RuneCountInString(text); n > max {
		return chatError(CodeTooLong, "the message is %d characters long; the limit is %d", n, max)
	}
	return nil
}
