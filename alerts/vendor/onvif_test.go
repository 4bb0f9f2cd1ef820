package vendor

import (
	"bytes"
	"compress/gzip"
	"errors"
	"strings"
	"testing"

	"vigil/alerts"
)

func TestParseONVIF(t *testing.T) {
	cellMotion := []parseWant{{
		Type: alerts.Motion, State: alerts.Active, At: "2026-11-26T13:05:00.123456Z",
		Key: "Rule=MyMotionDetectorRule;VideoAnalyticsConfigurationToken=VideoAnalyticsConfiguration_0;VideoSourceConfigurationToken=0",
		Detail: map[string]string{
			"topic": "tns1:RuleEngine/tnsaxis:CellMotionDetector/Motion", "rule": "MyMotionDetectorRule",
			"IsMotion": "true", "operation": "Changed",
		},
	}}
	for _, tc := range []struct {
		file    string
		want    []parseWant
		wantErr string
	}{
		{file: "axis_cellmotion_changed.xml", want: cellMotion},
		{file: "axis_cellmotion_changed.xml.gz", want: cellMotion},
		{file: "axis_videosource_motionalarm_initialized.xml", want: []parseWant{{
			Type: alerts.Motion, State: alerts.Inactive, Sync: true, At: "2026-11-26T13:04:58Z", Key: "Source=0",
			Detail: map[string]string{"topic": "tns1:VideoSource/tns1:MotionAlarm", "operation": "Initialized"},
		}}},
		{file: "axis_io_port.xml", want: []parseWant{{
			Type: alerts.IOAlarm, State: alerts.Active, At: "2026-11-26T13:10:02.5Z", Key: "port=1",
		}}},
		{file: "axis_vmd3_motion.xml", want: []parseWant{{
			Type: alerts.Motion, State: alerts.Active, At: "2026-11-26T13:11:00Z", Key: "areaid=0",
			Detail: map[string]string{"topic": "tns1:RuleEngine/tnsaxis:VMD3/vmd3_video_1", "active": "1"},
		}}},
		{file: "hikvision_fielddetector.xml", want: []parseWant{{
			Type: alerts.Intrusion, State: alerts.Active, At: "2026-11-26T13:05:00Z",
			Key:    "Rule=MyFieldDetector1;VideoAnalyticsConfigurationToken=VideoAnalyticsToken;VideoSourceConfigurationToken=VideoSourceToken",
			Detail: map[string]string{"rule": "MyFieldDetector1", "IsInside": "true"},
		}}},
		{file: "hikvision_linedetector.xml", want: []parseWant{{
			Type: alerts.LineCrossing, State: alerts.Pulse, At: "2026-11-26T13:05:00Z",
			Key:    "Rule=MyLineDetector1;VideoAnalyticsConfigurationToken=VideoAnalyticsToken;VideoSourceConfigurationToken=VideoSourceToken",
			Detail: map[string]string{"rule": "MyLineDetector1", "ObjectId": "17", "topic": "tns1:RuleEngine/LineDetector/Crossed"},
		}}},
		{file: "dahua_frames_and_events.xml", want: []parseWant{
			{Type: alerts.Motion, State: alerts.Active, At: "2026-11-26T13:20:00Z",
				Key: "Rule=MotionDetectorRule;VideoAnalyticsConfigurationToken=00000;VideoSourceConfigurationToken=00000"},
			{Type: alerts.VideoLoss, State: alerts.Inactive, At: "2026-11-26T13:20:00Z", Key: "Source=00000"},
			{Type: alerts.Tamper, State: alerts.Active, At: "2026-11-26T13:20:01Z", Key: "Source=00000"},
		}},
		{file: "hanwha_tamper.xml", want: []parseWant{{
			Type: alerts.Tamper, State: alerts.Active, At: "2026-11-26T13:30:15Z",
			Key:    "Rule=TamperingDetection;VideoAnalyticsConfigurationToken=VideoAnalyticsConfiguration-0;VideoSourceConfigurationToken=VideoSourceConfiguration-0",
			Detail: map[string]string{"rule": "TamperingDetection"},
		}}},
		{file: "hanwha_scenechange_analytics.xml", want: []parseWant{{
			Type: alerts.Tamper, State: alerts.Inactive, At: "2026-11-26T13:31:00Z", Key: "Source=VideoSourceToken-0",
		}}},
		{file: "uniview_digitalinput.xml", want: []parseWant{{
			Type: alerts.IOAlarm, State: alerts.Active, At: "2026-11-26T13:40:00Z", Key: "InputToken=AlarmIn_1",
		}}},
		{file: "uniview_deleted_nodata.xml", want: []parseWant{{
			Type: alerts.Intrusion, State: alerts.Inactive, At: "2026-11-26T13:41:00Z",
			Key:    "Rule=Gate;VideoSourceConfigurationToken=profile1_VideoSourceConfigurationToken",
			Detail: map[string]string{"operation": "Deleted", "rule": "Gate"},
		}}},
		{file: "garbage_time_signalloss.xml", want: []parseWant{
			{Type: alerts.VideoLoss, State: alerts.Active, Key: "Source=1"},
			{Type: alerts.VideoLoss, State: alerts.Active, Key: "Source=2"},
		}},
		{file: "analytics_only.xml", want: nil},
		{file: "bad_state_value.xml", wantErr: `onvif: notification 1: topic "tns1:VideoSource/MotionAlarm": SimpleItem "State" value "maybe": want true, false`},
		{file: "bad_root.xml", wantErr: `onvif: root element "EventNotificationAlert": want tt:MetadataStream`},
		{file: "bad_truncated.xml", wantErr: "onvif: malformed XML"},
	} {
		t.Run(tc.file, func(t *testing.T) {
			got, err := ParseONVIF("hall-entrance", parseReadTestdata(t, "onvif/"+tc.file), parseTestNow)
			parseCheckErr(t, err, tc.wantErr)
			if err == nil {
				parseCheckEvents(t, "hall-entrance", alerts.SourceONVIF, got, tc.want)
			}
		})
	}
}

func TestParseONVIFInline(t *testing.T) {
	doc := func(topic, msg string) string {
		return `<tt:MetadataStream xmlns:tt="http://www.onvif.org/ver10/schema" xmlns:wsnt="http://docs.oasis-open.org/wsn/b-2"><tt:Event><wsnt:NotificationMessage><wsnt:Topic>` +
			topic + `</wsnt:Topic><wsnt:Message>` + msg + `</wsnt:Message></wsnt:NotificationMessage></tt:Event></tt:MetadataStream>`
	}
	for _, tc := range []struct {
		name    string
		doc     string
		want    []parseWant
		wantErr string
	}{
		{name: "empty", doc: " \n", wantErr: "onvif: empty document"},
		{name: "not xml", doc: "RTSP/1.0 200 OK", wantErr: "onvif: malformed XML"},
		{name: "missing topic", doc: doc("", `<tt:Message/>`), wantErr: "onvif: notification 1: wsnt:Topic missing or empty"},
		{name: "missing message", doc: doc("tns1:VideoSource/MotionAlarm", ""), wantErr: "wsnt:Message/tt:Message missing"},
		{name: "unknown operation", doc: doc("tns1:VideoSource/MotionAlarm", `<tt:Message PropertyOperation="Removed"/>`),
			wantErr: `PropertyOperation "Removed": want Initialized, Changed or Deleted`},
		{name: "known topic without state", doc: doc("tns1:VideoSource/MotionAlarm", `<tt:Message PropertyOperation="Changed"/>`),
			wantErr: "no state in tt:Data"},
		{name: "unknown topic without state is a pulse", doc: doc("tns1:Device/HardwareFailure/StorageFailure", `<tt:Message UtcTime="2026-11-26T13:00:00Z"><tt:Data><tt:SimpleItem Name="Token" Value="SD_DISK_20200422_1"/></tt:Data></tt:Message>`),
			want: []parseWant{{Type: alerts.Other, State: alerts.Pulse, At: "2026-11-26T13:00:00Z", Key: "topic=Device/HardwareFailure/StorageFailure", Detail: map[string]string{"topic": "tns1:Device/HardwareFailure/StorageFailure", "Token": "SD_DISK_20200422_1"}}}},
		{name: "no prefixes and lower case topic", doc: doc("ruleengine/cellmotiondetector/motion", `<tt:Message><tt:Data><tt:SimpleItem Name="IsMotion" Value="0"/></tt:Data></tt:Message>`),
			want: []parseWant{{Type: alerts.Motion, State: alerts.Inactive, Key: "topic=ruleengine/cellmotiondetector/motion"}}},
		{name: "any prefix on the device io path", doc: doc("tns1:Device/vendor:IO/vendor:VirtualInput", `<tt:Message><tt:Source><tt:SimpleItem Name="port" Value="3"/></tt:Source><tt:Data><tt:SimpleItem Name="active" Value="true"/></tt:Data></tt:Message>`),
			want: []parseWant{{Type: alerts.IOAlarm, State: alerts.Active, Key: "port=3"}}},
		// Axis ACAP events carry no Source items: the topic keys them, so
		// two VMD4 profiles stay two signals.
		{name: "axis vmd4 profile ANY", doc: doc("tnsaxis:CameraApplicationPlatform/VMD/Camera1ProfileANY", `<tt:Message UtcTime="2026-11-26T13:00:00Z" PropertyOperation="Changed"><tt:Data><tt:SimpleItem Name="active" Value="1"/></tt:Data></tt:Message>`),
			want: []parseWant{{Type: alerts.Motion, State: alerts.Active, At: "2026-11-26T13:00:00Z", Key: "topic=CameraApplicationPlatform/VMD/Camera1ProfileANY"}}},
		{name: "axis vmd4 profile 1", doc: doc("tnsaxis:CameraApplicationPlatform/VMD/Camera1Profile1", `<tt:Message UtcTime="2026-11-26T13:00:00Z" PropertyOperation="Changed"><tt:Data><tt:SimpleItem Name="active" Value="1"/></tt:Data></tt:Message>`),
			want: []parseWant{{Type: alerts.Motion, State: alerts.Active, At: "2026-11-26T13:00:00Z", Key: "topic=CameraApplicationPlatform/VMD/Camera1Profile1"}}},
		{name: "axis vmd4 under rule engine", doc: doc("tns1:RuleEngine/tnsaxis:VMD4/Camera1Profile2", `<tt:Message><tt:Data><tt:SimpleItem Name="active" Value="0"/></tt:Data></tt:Message>`),
			want: []parseWant{{Type: alerts.Motion, State: alerts.Inactive, Key: "topic=RuleEngine/VMD4/Camera1Profile2"}}},
		{name: "axis pir sensor", doc: doc("tns1:Device/tnsaxis:Sensor/PIR", `<tt:Message><tt:Source><tt:SimpleItem Name="sensor" Value="0"/></tt:Source><tt:Data><tt:SimpleItem Name="state" Value="1"/></tt:Data></tt:Message>`),
			want: []parseWant{{Type: alerts.Motion, State: alerts.Active, Key: "sensor=0"}}},
		{name: "axis fence guard", doc: doc("tnsaxis:CameraApplicationPlatform/FenceGuard/Camera1Profile1", `<tt:Message><tt:Data><tt:SimpleItem Name="active" Value="1"/></tt:Data></tt:Message>`),
			want: []parseWant{{Type: alerts.LineCrossing, State: alerts.Active, Key: "topic=CameraApplicationPlatform/FenceGuard/Camera1Profile1"}}},
		{name: "axis loitering guard", doc: doc("tnsaxis:CameraApplicationPlatform/LoiteringGuard/Camera1Profile1", `<tt:Message><tt:Data><tt:SimpleItem Name="active" Value="1"/></tt:Data></tt:Message>`),
			want: []parseWant{{Type: alerts.Intrusion, State: alerts.Active, Key: "topic=CameraApplicationPlatform/LoiteringGuard/Camera1Profile1"}}},
		{name: "ptz moving is a state topic", doc: doc("tns1:PTZController/tnsaxis:Move/Channel_1", `<tt:Message><tt:Source><tt:SimpleItem Name="PTZConfigurationToken" Value="0"/></tt:Source><tt:Data><tt:SimpleItem Name="is_moving" Value="1"/></tt:Data></tt:Message>`),
			want: []parseWant{{Type: alerts.Other, State: alerts.Active, Key: "PTZConfigurationToken=0", Detail: map[string]string{"state_topic": "true"}}}},
		{name: "day night is a state topic", doc: doc("tns1:VideoSource/tnsaxis:DayNightVision", `<tt:Message><tt:Source><tt:SimpleItem Name="VideoSourceConfigurationToken" Value="1"/></tt:Source><tt:Data><tt:SimpleItem Name="day" Value="1"/></tt:Data></tt:Message>`),
			want: []parseWant{{Type: alerts.Other, State: alerts.Active, Key: "VideoSourceConfigurationToken=1", Detail: map[string]string{"state_topic": "true"}}}},
		{name: "relay echo is a state topic", doc: doc("tns1:Device/Trigger/Relay", `<tt:Message><tt:Source><tt:SimpleItem Name="RelayToken" Value="R1"/></tt:Source><tt:Data><tt:SimpleItem Name="LogicalState" Value="active"/></tt:Data></tt:Message>`),
			want: []parseWant{{Type: alerts.Other, State: alerts.Active, Key: "RelayToken=R1", Detail: map[string]string{"state_topic": "true"}}}},
		{name: "rule name item", doc: doc("tns1:RuleEngine/FieldDetector/ObjectsInside", `<tt:Message><tt:Source><tt:SimpleItem Name="RuleName" Value="Gate"/></tt:Source><tt:Data><tt:SimpleItem Name="IsInside" Value="false"/></tt:Data></tt:Message>`),
			want: []parseWant{{Type: alerts.Intrusion, State: alerts.Inactive, Key: "RuleName=Gate", Detail: map[string]string{"rule": "Gate"}}}},
		{name: "undeclared charset", doc: `<?xml version="1.0" encoding="ISO-2022-JP"?><tt:MetadataStream/>`, wantErr: `charset "ISO-2022-JP" not supported`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseONVIF("c1", []byte(tc.doc), parseTestNow)
			parseCheckErr(t, err, tc.wantErr)
			if err == nil {
				parseCheckEvents(t, "c1", alerts.SourceONVIF, got, tc.want)
			}
		})
	}
}

func TestParseONVIFLimits(t *testing.T) {
	big := bytes.Repeat([]byte(" "), MaxPayloadBytes+1)
	if _, err := ParseONVIF("c1", big, parseTestNow); !errors.Is(err, ErrPayloadTooLarge) {
		t.Fatalf("plain: %v", err)
	}
	var zb bytes.Buffer
	zw := gzip.NewWriter(&zb)
	zw.Write([]byte("<tt:MetadataStream>"))
	zw.Write(big)
	zw.Close()
	if zb.Len() > 64<<10 {
		t.Fatalf("bomb is %d bytes", zb.Len())
	}
	if _, err := ParseONVIF("c1", zb.Bytes(), parseTestNow); !errors.Is(err, ErrPayloadTooLarge) {
		t.Fatalf("gzip bomb: %v", err)
	}
	if _, err := ParseONVIF("c1", []byte("\x1f\x8b garbage"), parseTestNow); err == nil || !strings.HasPrefix(err.Error(), "onvif: gzip:") {
		t.Fatalf("bad gzip: %v", err)
	}
}

func FuzzParseONVIF(f *testing.F) {
	parseAddSeeds(f, "onvif", func(_ string, b []byte) { f.Add(b) })
	f.Fuzz(func(t *testing.T, doc []byte) {
		evs, err := ParseONVIF("c1", doc, parseTestNow)
		if err != nil {
			if evs != nil {
				t.Fatalf("events with error %v", err)
			}
			return
		}
		parseCheckInvariants(t, "c1", alerts.SourceONVIF, evs)
	})
}
