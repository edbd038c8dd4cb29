package chatserver

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/shockwave-go/shockwave/codec"
)

// The events of the chat protocol (see the package documentation). Rooms
// are joined and left with the Router's own events, codec.EventJoin and
// codec.EventLeave, and their members come and go as codec.EventPresence.
const (
	EventSend    = "chat.send"    // client: a message to the room
	EventPrivate = "chat.private" // both ways: a message between two members
	EventTyping  = "chat.typing"  // both ways: someone is typing
	EventRooms   = "chat.rooms"   // client request: the room list
	EventMsg     = "chat.msg"     // server: a message in a room, kept in its history
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

// Message is a message said in a room: the payload of chat.msg. Its place
// in the room is the envelope's position ("g" and "o"), which the room's
// history gives it.
type Message struct {
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

// State is the chat's part of the reply to a join (codec.JoinReply's
// State): the client's name, the signed one, and the longest message
// allowed. Who is in the room is the reply's Present, and the room's last
// messages follow the reply as chat.msg events.
type State struct {
	Nick      string `json:"nick"`
	MaxLength int    `json:"maxLength"`
	// Node names the server the client is connected to, when the chat
	// runs on several (Config.Node).
	Node string `json:"node,omitempty"`
}

// Typing tells a room that a member is typing.
type Typing struct {
	Nick string `json:"nick"`
}

// RoomInfo is an entry of the room list.
type RoomInfo struct {
	Name    string `json:"name"`
	Members int    `json:"members"` // users present, those in their grace period included
}

// The error codes of the chat, besides the Router's own (codec.Code*).
const (
	CodeBadRoom      = "bad_room"             // the room's name is empty, too long or has characters that cannot be shown
	CodeNotJoined    = "not_joined"           // the event needs the client to be in the room
	CodeEmpty        = "empty"                // the message has no text
	CodeTooLong      = "too_long"             // the message is longer than the limit
	CodeNoSuchUser   = "no_such_user"         // no member of the room has that name
	CodeElsewhere    = "elsewhere"            // the recipient of a private message is in the room through another server
	CodeTooManyRooms = codec.CodeTooManyRooms // the client, or the server, has too many rooms
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
