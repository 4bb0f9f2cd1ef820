package vendor

import (
	"reflect"
	"strings"
	"testing"

	"vigil/alerts"
)

func TestMappingApply(t *testing.T) {
	onvif := func(topic string, state bool) alerts.Event {
		d := map[string]string{"topic": topic}
		if state {
			d["state_topic"] = "true"
		}
		return alerts.Event{Source: alerts.SourceONVIF, Type: alerts.Other, State: alerts.Active, Detail: d}
	}
	dahua := func(code string, typ alerts.Type) alerts.Event {
		return alerts.Event{Source: alerts.SourceDahua, Type: typ, State: alerts.Active, Detail: map[string]string{"code": code}}
	}
	hik := func(et string, typ alerts.Type) alerts.Event {
		return alerts.Event{Source: alerts.SourceHikvision, Type: typ, State: alerts.Active, Detail: map[string]string{"event_type": et}}
	}
	for _, tc := range []struct {
		name string
		m    Mapping
		in   []alerts.Event
		want []alerts.Type // types of the events kept, in order
	}{
		{name: "state topics dropped by default", in: []alerts.Event{onvif("tns1:PTZController/tnsaxis:Move/Channel_1", true), onvif("tns1:RuleEngine/MyRule", false)},
			want: []alerts.Type{alerts.Other}},
		{name: "map by topic with prefixes", m: Mapping{Map: map[string]alerts.Type{"tns1:RuleEngine/MyRule": alerts.Intrusion}},
			in: []alerts.Event{onvif("tns1:RuleEngine/MyRule", false)}, want: []alerts.Type{alerts.Intrusion}},
		{name: "map by topic without prefixes, any case", m: Mapping{Map: map[string]alerts.Type{"ruleengine/myrule": alerts.Intrusion}},
			in: []alerts.Event{onvif("tns1:RuleEngine/tnsaxis:MyRule", false)}, want: []alerts.Type{alerts.Intrusion}},
		{name: "a mapped state topic is kept", m: Mapping{Map: map[string]alerts.Type{"tns1:Device/Trigger/Relay": alerts.IOAlarm}},
			in: []alerts.Event{onvif("tns1:Device/Trigger/Relay", true)}, want: []alerts.Type{alerts.IOAlarm}},
		{name: "ignore a dahua code", m: Mapping{Ignore: []string{"NTPAdjustTime"}},
			in: []alerts.Event{dahua("NTPAdjustTime", alerts.Other), dahua("VideoLoss", alerts.VideoLoss)}, want: []alerts.Type{alerts.VideoLoss}},
		{name: "map a hikvision event type", m: Mapping{Map: map[string]alerts.Type{"facesnap": alerts.Intrusion}},
			in: []alerts.Event{hik("faceSnap", alerts.Other)}, want: []alerts.Type{alerts.Intrusion}},
		{name: "ignore wins over map", m: Mapping{Map: map[string]alerts.Type{"VideoMotion": alerts.Intrusion}, Ignore: []string{"videomotion"}},
			in: []alerts.Event{dahua("VideoMotion", alerts.Motion)}, want: nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got []alerts.Type
			for _, e := range tc.m.Apply(tc.in) {
				got = append(got, e.Type)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
		})
	}
}

func TestChannelsRoute(t *testing.T) {
	var unknown []string
	c := &Channels{Device: "nvr-1", ByChannel: map[string]string{"1": "hall-entrance", "34": "gate"},
		OnUnknown: func(ch string, first bool) {
			if first {
				unknown = append(unknown, "first:"+ch)
			} else {
				unknown = append(unknown, ch)
			}
		}}
	ev := func(src alerts.Source, k, v string) alerts.Event {
		return alerts.Event{Camera: "nvr-1", Source: src, Type: alerts.Motion, State: alerts.Active, Detail: map[string]string{k: v}}
	}
	got := c.Route([]alerts.Event{
		ev(alerts.SourceHikvision, "channel", "34"),
		ev(alerts.SourceHikvision, "channel", "7"),
		ev(alerts.SourceDahua, "index", "1"),
		ev(alerts.SourceHikvision, "channel", "7"),
		ev(alerts.SourceHikvision, "channel", ""),
	})
	var cams []string
	for _, e := range got {
		cams = append(cams, e.Camera+"/"+e.Detail["device"])
	}
	if want := []string{"gate/nvr-1", "hall-entrance/nvr-1"}; !reflect.DeepEqual(cams, want) {
		t.Fatalf("routed to %v, want %v", cams, want)
	}
	if want := []string{"first:7", "7", "first:"}; !reflect.DeepEqual(unknown, want) {
		t.Fatalf("unknown %v, want %v (counted each time, first once per channel)", unknown, want)
	}
}

func TestDahuaStopsEndsEveryRule(t *testing.T) {
	body := "Code=CrossLineDetection;action=Start;index=0;data={\"Name\":\"East\"}\n" +
		"Code=CrossLineDetection;action=Start;index=0;data={\"Name\":\"West\"}\n" +
		"Code=CrossLineDetection;action=Start;index=1;data={\"Name\":\"Other\"}\n"
	var d DahuaStops
	evs, _, err := ParseDahua("gate", "", strings.NewReader(body), parseTestNow)
	if err != nil {
		t.Fatal(err)
	}
	d.Expand(evs)
	stop, _, err := ParseDahua("gate", "", strings.NewReader("Code=CrossLineDetection;action=Stop;index=0\n"), parseTestNow)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range d.Expand(stop) {
		got = append(got, string(e.State)+" "+e.Key)
	}
	want := map[string]bool{"inactive index=0;rule=East": true, "inactive index=0;rule=West": true, "inactive index=0": true}
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for _, g := range got {
		if !want[g] {
			t.Fatalf("got %v, want %v", got, want)
		}
	}
	// Ended: a second Stop ends nothing more.
	if again := d.Expand(stop); len(again) != 1 {
		t.Fatalf("second stop gave %d events", len(again))
	}
}
