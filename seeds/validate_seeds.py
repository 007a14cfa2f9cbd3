"""Structural checks for the seed files in this folder. Run: python seeds/validate_seeds.py"""
import collections, datetime, json, re, sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
TODAY = "2026-11-21"
CODES = {"00","01","02","04","05","06","07","08","11","12","13","20","21","22","23","25","99"}
CATS = {"RA","AG","AR","BC","CD","CP","DPR","ED","ELT","EN","ENV","FN","HL","HO","HU","IIJ","IS","ISS","LJL","NR","OZ","RD","ST","T","ACA","O"}
INSTR = {"G","CA","PC","O"}
ORG = {"city government","county government","nonprofit","tribal government","school district","hospital","state government","institution of higher education"}
ACTS = set("street outreach, violence interruption, hospital-based intervention, group violence intervention, reentry employment, reentry services, youth jobs, youth development, mentoring, school mental health, school safety, trauma-informed care, victim services, behavioral health, substance use, place-based work, community development, housing, workforce training, family support, gang prevention, data and evaluation, training and technical assistance, planning and capacity building, law enforcement partnership, firearm violence prevention".split(", "))

def programs(path):
    data = json.loads(path.read_text())
    alns, slugs = collections.Counter(), collections.Counter()
    for p in data:
        for k in ("slug","name","department","sub_agency","summary","how_cvi_fits","eligible_applicants","source_url","last_verified"):
            assert isinstance(p.get(k), str) and p[k].strip(), (p.get("slug"), k)
        assert p["department"] in {"DOJ","DOL","ED","HHS","HUD","Treasury","AmeriCorps"}
        assert p["activities"] and set(p["activities"]) <= ACTS, p["slug"]
        for a in p["assistance_listings"]:
            assert re.fullmatch(r"\d\d\.\d{3}[A-Z]?", a["number"]) and a["title"]
            alns[a["number"]] += 1
        slugs[p["slug"]] += 1
    assert all(v == 1 for v in alns.values()), "ALN repeated across programs"
    assert all(v == 1 for v in slugs.values()), "slug repeated"
    return len(data)

def opportunities(path):
    ids = set(); n = 0
    for line in path.read_text().splitlines():
        r = json.loads(line); n += 1
        for k in ("id","title","agency","description"):
            assert isinstance(r.get(k), str) and r[k].strip(), (r.get("id"), k)
        assert r["id"] not in ids, r["id"]; ids.add(r["id"])
        assert 60 <= len(r["description"].split()) <= 200, r["id"]
        assert r.get("status") in ("forecasted","posted","closed","archived"), r["id"]
        for k in ("post_date","close_date"):
            if k in r: datetime.date.fromisoformat(r[k])
        if r.get("close_date"):
            past = r["close_date"] < TODAY
            assert (r["status"] in ("closed","archived")) == past, r["id"]
        for k in ("award_floor","award_ceiling","total_funding","expected_awards"):
            if k in r: assert isinstance(r[k], int) and r[k] > 0, (r["id"], k)
        assert all(re.fullmatch(r"\d\d\.\d{3}[A-Z]?", a) for a in r.get("aln", [])), r["id"]
        assert set(r.get("eligibility_codes", [])) <= CODES, r["id"]
        assert set(r.get("categories", [])) <= CATS, r["id"]
        assert set(r.get("funding_instruments", [])) <= INSTR, r["id"]
    return n, ids

def profiles(path):
    ids = set()
    for line in path.read_text().splitlines():
        p = json.loads(line)
        assert set(p) == {"id","name","org_type","city","state","program_description","focus_areas","populations","funding_need","budget_range"}, p.get("id")
        assert p["org_type"] in ORG and re.fullmatch(r"[A-Z]{2}", p["state"]) and p["focus_areas"] and p["populations"]
        assert p["id"] not in ids; ids.add(p["id"])
    return ids

def qrels(path, prof_ids, opp_ids):
    lines = path.read_text().split("\n")
    assert lines[0] == "profile_id\topp_id\tgrade\tnote"
    per = collections.defaultdict(list); seen = set()
    for l in filter(None, lines[1:]):
        p, o, g, note = l.split("\t")
        assert p in prof_ids and o in opp_ids and 0 <= int(g) <= 3 and note.strip(), l
        assert (p, o) not in seen; seen.add((p, o)); per[p].append(int(g))
    for p in prof_ids:
        assert len(per[p]) >= 25 and sum(g >= 2 for g in per[p]) >= 5, p
    return len(seen)

if __name__ == "__main__":
    print("programs", programs(HERE / "cvi_programs.json"))
    print("opportunities", opportunities(HERE / "opportunities.jsonl")[0])
    main_prof = profiles(HERE / "profiles.jsonl"); print("profiles", len(main_prof))
    n, eval_opps = opportunities(HERE / "eval" / "opportunities.jsonl"); print("eval opportunities", n)
    eval_prof = profiles(HERE / "eval" / "profiles.jsonl"); print("eval profiles", len(eval_prof))
    assert not (eval_prof & main_prof) and all(p.startswith("eval-") for p in eval_prof)
    print("qrels rows", qrels(HERE / "eval" / "qrels.tsv", eval_prof, eval_opps))
    print("OK")
