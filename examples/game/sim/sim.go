package sim

// Keys is the bitmask of held keys.
type Keys uint8

// The keys a player can hold. Opposite keys held together cancel out.
const (
	Up Keys = 1 << iota
	Down
	Left
	Right
)

// AllKeys is the mask of all defined keys; [World.Apply] drops other bits.
const AllKeys = Up | Down | Left | Right

// Input is one input message of a player: the keys it holds from now on and
// the sequence number of the message, which the player's [Player.Ack]
// echoes once applied.
type Input struct {
	Seq  uint32 `msgpack:"s"`
	Keys Keys   `msgpack:"k"`
}

// Scale is the number of sub-units in a pixel. All positions and
// velocities are in sub-units (velocities per tick).
const Scale = 16

// Radii of players and items, in pixels.
const (
	PlayerRadius int32 = 18
	ItemRadius   int32 = 8
)

// Per-second rules, in pixels per second (speeds) and pixels per second
// squared (accelerations). [Config.Tuning] converts them to sub-units per
// tick.
const (
	// MaxSpeed caps the speed a player reaches by itself.
	MaxSpeed = 300
	// Acceleration is applied along the held keys.
	Acceleration = 2400
	// Friction is the deceleration of every player, keys held or not:
	// the net acceleration with a key held is Acceleration - Friction, and
	// a released player stops in MaxSpeed/Friction seconds.
	Friction = 1200
	// BumpSpeed is the closing speed above which a collision steals a
	// point.
	BumpSpeed = 200
	// WallStopSpeed is the slowest rebound off a wall; slower rebounds
	// stop the player instead.
	WallStopSpeed = 60
)

// MaxNameLen is the longest player name, in runes; [World.Join] cuts longer
// ones.
const MaxNameLen = 24

// Defaults and limits of [Config].
const (
	DefaultWidth    = 1280
	DefaultHeight   = 720
	DefaultTickRate = 30
	DefaultItems    = 12

	// MinSize is the smallest arena side in pixels.
	MinSize = 4 * PlayerRadius
	// MaxSize is the largest arena side in pixels.
	MaxSize = 1 << 16
	// MaxTickRate is the highest tick rate; above it the per-tick
	// accelerations would round to almost nothing.
	MaxTickRate = 120
	// MaxItems is the largest number of items.
	MaxItems = 1024
)

// Config describes a world. The zero value is a valid configuration: see
// [Config.WithDefaults].
type Config struct {
	// Width and Height are the arena size in pixels; 0 means 1280x720.
	// Values are kept within [MinSize, MaxSize].
	Width, Height int32
	// TickRate is the number of ticks a second, used to turn the
	// per-second rules into per-tick values; 0 means 30. At most
	// MaxTickRate.
	TickRate int
	// Items is the number of items on the field at once; 0 means 12, a
	// negative number means none. At most MaxItems.
	Items int
	// Seed seeds the random generator (spawn points, item respawns).
	Seed uint64
}

// WithDefaults returns c with zero fields replaced by their defaults and
// the others brought within their limits; it is the configuration that
// [New] uses.
func (c Config) WithDefaults() Config {
	c.Width = sizeOr(c.Width, DefaultWidth)
	c.Height = sizeOr(c.Height, DefaultHeight)
	switch {
	case c.TickRate <= 0:
		c.TickRate = DefaultTickRate
	case c.TickRate > MaxTickRate:
		c.TickRate = MaxTickRate
	}
	switch {
	case c.Items == 0:
		c.Items = DefaultItems
	case c.Items < 0:
		c.Items = 0
	case c.Items > MaxItems:
		c.Items = MaxItems
	}
	return c
}

func sizeOr(v, def int32) int32 {
	switch {
	case v <= 0:
		return def
	case v < MinSize:
		return MinSize
	case v > MaxSize:
		return MaxSize
	}
	return v
}

// Tuning holds the per-tick values of the rules, in sub-units per tick
// (speeds) and sub-units per tick per tick (accelerations).
type Tuning struct {
	Acceleration  int32 // per held direction, before diagonal scaling
	Friction      int32 // speed lost each tick
	MaxSpeed      int32 // speed cap
	BumpSpeed     int32 // closing speed above which a bump steals a point
	WallStopSpeed int32 // slowest wall rebound
}

// Tuning returns the per-tick values of the rules for c's tick rate (after
// [Config.WithDefaults]). At 30 Hz they are 43, 21, 160, 107 and 32.
func (c Config) Tuning() Tuning {
	tr := int64(c.WithDefaults().TickRate)
	speed := func(pxPerSec int64) int32 { return atLeast1(divRound(pxPerSec*Scale, tr)) }
	accel := func(pxPerSec2 int64) int32 { return atLeast1(divRound(pxPerSec2*Scale, tr*tr)) }
	return Tuning{
		Acceleration:  accel(Acceleration),
		Friction:      accel(Friction),
		MaxSpeed:      speed(MaxSpeed),
		BumpSpeed:     speed(BumpSpeed),
		WallStopSpeed: speed(WallStopSpeed),
	}
}

func divRound(a, b int64) int64 { return (a + b/2) / b }

func atLeast1(v int64) int32 {
	if v < 1 {
		return 1
	}
	return int32(v)
}

// Player is the state of one player.
type Player struct {
	// ID identifies the player in its world.
	ID uint32 `msgpack:"id"`
	// Name is the display name, at most MaxNameLen runes of valid UTF-8.
	Name string `msgpack:"n"`
	// X and Y are the position of the centre, in sub-units.
	X int32 `msgpack:"x"`
	Y int32 `msgpack:"y"`
	// VX and VY are the velocity, in sub-units per tick.
	VX int32 `msgpack:"vx"`
	VY int32 `msgpack:"vy"`
	// Score is the number of points, never negative.
	Score int32 `msgpack:"sc"`
	// Ack is the sequence number of the last input applied (0 = none).
	Ack uint32 `msgpack:"a"`
	// Color is a palette index, 0..15 (the id modulo 16).
	Color uint8 `msgpack:"c"`
	// Keys are the keys held, as of the last input applied. They are not
	// sent to clients.
	Keys Keys `msgpack:"-"`
}

// Item is a collectable item.
type Item struct {
	// ID identifies the item; a respawned item gets a new id.
	ID uint32 `msgpack:"id"`
	// X and Y are the position of the centre, in sub-units.
	X int32 `msgpack:"x"`
	Y int32 `msgpack:"y"`
}

// Snapshot is the full state of a world at one tick.
type Snapshot struct {
	// Tick is the number of steps taken.
	Tick uint64 `msgpack:"t"`
	// Players are sorted by id.
	Players []Player `msgpack:"p"`
	// Items are in slot order (stable across respawns).
	Items []Item `msgpack:"i"`
}
