package store

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Buckets of the database.
var (
	// bucketEvents: seq -> Event (JSON).
	bucketEvents = []byte("events")
	// bucketBodies: seq -> the request body, byte for byte.
	bucketBodies = []byte("bodies")
	// bucketPending: seq|target -> deliveryState (JSON), waiting or retrying.
	bucketPending = []byte("pending")
	// bucketDead: seq|target -> deliveryState (JSON), dead letters.
	bucketDead = []byte("dead")
	// bucketDedup: expiry|digest -> nothing, in time order (see dedup.go).
	bucketDedup = []byte("dedup")
	// bucketMeta: small named values (e.g. the last replay handled).
	bucketMeta = []byte("meta")
)

// bucketID names a bucket in the log.
type bucketID uint8

const (
	bEvents bucketID = iota
	bBodies
	bPending
	bDead
	bDedup
	bMeta
)

// bucketNames by bucketID.
var bucketNames = [...][]byte{bEvents: bucketEvents, bBodies: bucketBodies, bPending: bucketPending, bDead: bucketDead, bDedup: bucketDedup, bMeta: bucketMeta}

func createBuckets(tx *bolt.Tx) error {
	for _, name := range bucketNames {
		if _, err := tx.CreateBucketIfNotExists(name); err != nil {
			return err
		}
	}
	return nil
}

// Event is what the store keeps about an accepted event besides its body.
type Event struct {
	// Seq is the store's number for the event, unique within this store.
	Seq uint64 `json:"-"`
	// UID, Namespace and Name identify the MeetergoWebhook it came for.
	UID       string `json:"uid"`
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	// Type is the meetergo event type.
	Type string `json:"type"`
	// ID is the delivery id sent to targets (webhook-id), the same for
	// every attempt.
	ID string `json:"id"`
	// ReceivedAt is when it was accepted.
	ReceivedAt time.Time `json:"receivedAt"`
	// BodySize is the length of its body, as Accept stored it and Load
	// found it (not stored beside the event).
	BodySize int `json:"-"`
}

// Key names one delivery: an event and one of its targets.
type Key struct {
	Seq    uint64
	Target string
}

func (k Key) bytes() []byte {
	b := make([]byte, 8, 8+len(k.Target))
	binary.BigEndian.PutUint64(b, k.Seq)
	return append(b, k.Target...)
}

func parseKey(b []byte) (Key, error) {
	if len(b) < 8 {
		return Key{}, fmt.Errorf("store: short delivery key %x", b)
	}
	return Key{Seq: binary.BigEndian.Uint64(b), Target: string(b[8:])}, nil
}

func (k Key) String() string { return fmt.Sprintf("%d/%s", k.Seq, k.Target) }

// Delivery is the state of one event's delivery to one target.
type Delivery struct {
	Key
	// Attempts made so far.
	Attempts int
	// Due is when the next attempt may start.
	Due time.Time
	// LastError describes the last failed attempt (target and status, never
	// payload).
	LastError string
	// DeadAt is when the delivery became a dead letter; zero while pending.
	DeadAt time.Time
}

// Dead says whether d is a dead letter.
func (d Delivery) Dead() bool { return !d.DeadAt.IsZero() }

// deliveryState is a Delivery as stored (the key is the record's key).
type deliveryState struct {
	Attempts  int       `json:"attempts,omitempty"`
	Due       time.Time `json:"due"`
	LastError string    `json:"lastError,omitempty"`
	DeadAt    time.Time `json:"deadAt,omitzero"`
}

func encodeDelivery(d Delivery) ([]byte, error) {
	return json.Marshal(deliveryState{Attempts: d.Attempts, Due: d.Due, LastError: d.LastError, DeadAt: d.DeadAt})
}

func decodeDelivery(k, v []byte) (Delivery, error) {
	key, err := parseKey(k)
	if err != nil {
		return Delivery{}, err
	}
	var st deliveryState
	if err := json.Unmarshal(v, &st); err != nil {
		return Delivery{}, fmt.Errorf("store: delivery %s: %w", key, err)
	}
	return Delivery{Key: key, Attempts: st.Attempts, Due: st.Due, LastError: st.LastError, DeadAt: st.DeadAt}, nil
}

func seqBytes(seq uint64) []byte {
	return binary.BigEndian.AppendUint64(make([]byte, 0, 8), seq)
}

func encodeTime(t time.Time) []byte {
	return binary.BigEndian.AppendUint64(make([]byte, 0, 8), uint64(t.UnixNano()))
}

func decodeTime(b []byte) time.Time {
	if len(b) < 8 {
		return time.Time{}
	}
	return time.Unix(0, int64(binary.BigEndian.Uint64(b)))
}
