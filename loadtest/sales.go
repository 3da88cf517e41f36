package loadtest

import (
	"fmt"
	"iter"
	"math/rand/v2"
	"strconv"
	"time"
)

// Sales describes a stream of point-of-sale events.
type Sales struct {
	Seed   uint64
	Events int           // number of events, malformed ones included
	Start  time.Time     // event time of the first event
	Span   time.Duration // events spread evenly over [Start, Start+Span)
	Stores int           // number of stores; default 20
	// Jitter moves each event's time back by up to this much, so that events
	// arrive out of order within the bound. Must stay below max_out_of_order.
	Jitter time.Duration
	// MalformedEvery makes every n-th event malformed (0: none). The kinds
	// rotate: broken JSON, wrong type, missing required field, bad timestamp.
	MalformedEvery int
	// SubjectPrefix is followed by ".store-NNN". Default "events.sales".
	SubjectPrefix string
	// AheadEvery makes every n-th event (0: none) come from a producer
	// whose clock runs Ahead: its time is moved Ahead and its subject is
	// "<prefix>.ahead".
	AheadEvery int
	Ahead      time.Duration
}

// Event is one generated event.
type Event struct {
	Subject   string
	Data      []byte
	Time      time.Time // event time (zero for malformed events)
	Amount    float64
	Quantity  int64
	Malformed bool
	Reason    string // expected DLQ reason of a malformed event
}

// Generate returns the events in publish order.
func (s Sales) Generate() []Event {
	out := make([]Event, 0, s.Events)
	for e := range s.All() {
		out = append(out, e)
	}
	return out
}

// All yields the events in publish order without holding them all.
func (s Sales) All() iter.Seq[Event] {
	return func(yield func(Event) bool) {
		s.each(yield)
	}
}

func (s Sales) each(yield func(Event) bool) {
	if s.Stores == 0 {
		s.Stores = 20
	}
	if s.SubjectPrefix == "" {
		s.SubjectPrefix = "events.sales"
	}
	r := rand.New(rand.NewPCG(s.Seed, s.Seed^0x9e3779b97f4a7c15))
	step := s.Span / time.Duration(max(s.Events, 1))
	skus := []string{"espresso", "latte", "croissant", "bagel", "muffin", "tea", "juice", "sandwich"}
	currencies := []string{"EUR", "USD", "GBP"}
	malformed := 0
	for i := 0; i < s.Events; i++ {
		store := 1 + r.IntN(s.Stores)
		subject := fmt.Sprintf("%s.store-%03d", s.SubjectPrefix, store)
		if s.MalformedEvery > 0 && (i+1)%s.MalformedEvery == 0 {
			if !yield(s.malformed(malformed, subject, i)) {
				return
			}
			malformed++
			continue
		}
		t := s.Start.Add(time.Duration(i) * step)
		if s.Jitter > 0 {
			t = t.Add(-time.Duration(r.Int64N(int64(s.Jitter))))
		}
		if t.Before(s.Start) {
			t = s.Start
		}
		if s.AheadEvery > 0 && (i+1)%s.AheadEvery == 0 {
			t, subject = t.Add(s.Ahead), s.SubjectPrefix+".ahead"
		}
		t = t.Truncate(time.Millisecond)
		qty := int64(1 + r.IntN(5))
		cents := int64(150 + r.IntN(2500))
		amount := float64(qty*cents) / 100
		buf := []byte(fmt.Sprintf(`{"store_id":"store-%03d","sale_id":"s-%d-%d","sku":%q,"quantity":%d,"amount":%s,"currency":%q,"paid":%t,"sold_at":%q,"business_day":%q}`,
			store, s.Seed, i, skus[r.IntN(len(skus))], qty, strconv.FormatFloat(amount, 'f', 2, 64), currencies[r.IntN(len(currencies))],
			r.IntN(10) != 0, t.UTC().Format("2006-01-02T15:04:05.000Z"), t.UTC().Format("2006-01-02")))
		if !yield(Event{Subject: subject, Data: buf, Time: t, Amount: amount, Quantity: qty}) {
			return
		}
	}
}

// SaleAt builds one well-formed event at time t (for late events in tests).
func SaleAt(id string, store int, t time.Time, qty int64, amount float64) Event {
	data := fmt.Sprintf(`{"store_id":"store-%03d","sale_id":%q,"sku":"late","quantity":%d,"amount":%s,"currency":"EUR","paid":true,"sold_at":%q,"business_day":%q}`,
		store, id, qty, strconv.FormatFloat(amount, 'f', 2, 64), t.UTC().Format("2006-01-02T15:04:05.000Z"), t.UTC().Format("2006-01-02"))
	return Event{Subject: fmt.Sprintf("events.sales.store-%03d", store), Data: []byte(data), Time: t, Amount: amount, Quantity: qty}
}

func (s Sales) malformed(k int, subject string, i int) Event {
	switch k % 4 {
	case 0:
		return Event{Subject: subject, Data: []byte(`{"store_id":"store-001","amount":12.5,`), Malformed: true, Reason: "malformed_json"}
	case 1:
		return Event{Subject: subject, Data: []byte(fmt.Sprintf(`{"store_id":"store-001","sale_id":"bad-%d","quantity":"two","amount":3.5,"sold_at":"2026-01-01T00:00:00Z"}`, i)), Malformed: true, Reason: "wrong_type"}
	case 2:
		return Event{Subject: subject, Data: []byte(fmt.Sprintf(`{"store_id":"store-001","sale_id":"bad-%d","quantity":1,"sold_at":"2026-01-01T00:00:00Z"}`, i)), Malformed: true, Reason: "missing_field"}
	default:
		return Event{Subject: subject, Data: []byte(fmt.Sprintf(`{"store_id":"store-001","sale_id":"bad-%d","quantity":1,"amount":2,"sold_at":"yesterday"}`, i)), Malformed: true, Reason: "wrong_type"}
	}
}
