package vendor

import (
	"testing"

	"vigil/alerts"
)

func TestParseONVIFNotify(t *testing.T) {
	for _, tc := range []struct {
		name    string
		doc     string // inline; "" reads file
		file    string
		want    []parseWant
		wantErr string
	}{
		{file: "notify_cellmotion.xml", want: []parseWant{
			{Type: alerts.Motion, State: alerts.Active, At: "2026-11-26T13:05:00Z",
				Key:    "Rule=MyMotionDetectorRule;VideoAnalyticsConfigurationToken=VideoAnalyticsToken;VideoSourceConfigurationToken=VideoSourceToken",
				Detail: map[string]string{"rule": "MyMotionDetectorRule", "topic": "tns1:RuleEngine/CellMotionDetector/Motion"}},
			{Type: alerts.VideoLoss, State: alerts.Inactive, Sync: true, At: "2026-11-26T13:05:01Z", Key: "Source=VideoSource_1"},
		}},
		{file: "pullmessages_empty.xml", want: nil},
		{file: "bad_fault_notauthorized.xml", wantErr: `SOAP fault "ter:NotAuthorized": "Sender not Authorized"`},
		{name: "axis vmd4 through Notify", doc: `<Envelope><Body><Notify><NotificationMessage><Topic>tnsaxis:CameraApplicationPlatform/VMD/Camera1ProfileANY</Topic><Message><Message UtcTime="2026-11-26T13:00:00Z"><Data><SimpleItem Name="active" Value="1"/></Data></Message></Message></NotificationMessage></Notify></Body></Envelope>`,
			want: []parseWant{{Type: alerts.Motion, State: alerts.Active, At: "2026-11-26T13:00:00Z", Key: "topic=CameraApplicationPlatform/VMD/Camera1ProfileANY"}}},
		{name: "not soap", doc: `<MetadataStream/>`, wantErr: `root element "MetadataStream": want soap:Envelope`},
		{name: "notification without topic", doc: `<Envelope><Body><Notify><NotificationMessage><Message/></NotificationMessage></Notify></Body></Envelope>`, wantErr: "notification 1: wsnt:Topic missing"},
		{name: "truncated", doc: `<Envelope><Body><Notify>`, wantErr: "malformed XML"},
		{name: "empty", doc: " ", wantErr: "empty message"},
	} {
		name := tc.name
		if name == "" {
			name = tc.file
		}
		t.Run(name, func(t *testing.T) {
			doc := []byte(tc.doc)
			if tc.file != "" {
				doc = parseReadTestdata(t, "onvif_notify/"+tc.file)
			}
			got, err := ParseONVIFNotify("gate", doc, parseTestNow)
			parseCheckErr(t, err, tc.wantErr)
			if err == nil {
				parseCheckEvents(t, "gate", alerts.SourceONVIF, got, tc.want)
			}
		})
	}
}

func FuzzParseONVIFNotify(f *testing.F) {
	parseAddSeeds(f, "onvif_notify", func(_ string, b []byte) { f.Add(b) })
	f.Fuzz(func(t *testing.T, doc []byte) {
		evs, err := ParseONVIFNotify("c", doc, parseTestNow)
		if err != nil {
			if evs != nil {
				t.Fatalf("events with error %v", err)
			}
			return
		}
		parseCheckInvariants(t, "c", alerts.SourceONVIF, evs)
	})
}
