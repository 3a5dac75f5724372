"""The HTML report's inline style sheet and script, kept apart from the code that writes it.

STYLE: readable at 390 px (the findings and could-not-check tables become cards), long values
wrap, right-to-left text isolated. SCRIPT: sorting (a header, or "Sort by") and filtering (text,
severity, kind, table, verdict) of the findings table; without it the table is whole, in table
and row order. Neither loads anything: the report's Content-Security-Policy forbids it.
"""

STYLE = """
:root{--fg:#1d2430;--muted:#5b6470;--line:#d9dde3;--bg:#fff;--soft:#f4f6f8;
--error:#b42318;--warning:#c4640a;--info:#2f6db5;--ok:#2e7d4f}
*{box-sizing:border-box}
[hidden]{display:none!important}
body{margin:0 auto;max-width:1320px;padding:16px 20px 48px;color:var(--fg);background:var(--bg);
font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Noto Sans","Noto Sans Arabic",
"Noto Sans Hebrew",sans-serif;overflow-wrap:break-word}
h1{font-size:1.6em;margin:.2em 0}h2{font-size:1.25em;margin:1.6em 0 .5em;
border-bottom:2px solid var(--line);padding-bottom:.2em}h3{font-size:1.05em;margin:.2em 0 .4em}
h3 small{font-weight:normal;color:var(--muted)}
code{font:.92em ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;background:var(--soft);
padding:0 .2em;border-radius:3px}
bdi{unicode-bidi:isolate}
td,th,li,dd{unicode-bidi:isolate}
a{color:#1f5fae}
.sub{color:var(--muted);font-size:.93em}
.caveat{background:#fff7e6;border-left:4px solid var(--warning);padding:.5em .8em;margin:.6em 0}
nav{display:flex;flex-wrap:wrap;gap:.4em 1.2em;margin:.6em 0}
.numbers{display:grid;grid-template-columns:repeat(auto-fill,minmax(130px,1fr));gap:8px;
margin:14px 0}
.tile{background:var(--soft);border-radius:6px;padding:8px 10px;font-size:.9em;color:var(--muted)}
.tile .n{display:block;font-size:1.7em;font-weight:650;color:var(--fg);line-height:1.1}
.tile.error .n{color:var(--error)}.tile.warning .n,.tile.warn .n{color:var(--warning)}
.groups{display:grid;grid-template-columns:repeat(auto-fill,minmax(min(100%,560px),1fr));gap:12px}
.groups article{border:1px solid var(--line);border-radius:6px;padding:8px 12px}
.groups ol{margin:0;padding-left:1.3em}.groups li{margin:.35em 0}
.sev{display:inline-block;min-width:4.6em;text-align:center;border-radius:3px;color:#fff;
font-size:.8em;font-weight:600;padding:0 .35em}
.sev-error{background:var(--error)}.sev-warning{background:var(--warning)}
.sev-info{background:var(--info)}
.verdict{color:var(--muted);font-size:.9em}
.mark{display:inline-block;border-radius:3px;font-size:.8em;padding:0 .35em;border:1px solid}
.mark.accepted{color:var(--ok)}.mark.stale{color:var(--warning)}.mark.recon{color:var(--muted)}
.charts{display:grid;grid-template-columns:repeat(auto-fill,minmax(min(100%,420px),1fr));
gap:16px 28px}
figure{margin:0}figcaption{font-weight:600;margin-bottom:6px}
figcaption .sub{display:block;font-weight:normal}
svg.chart{width:100%;max-width:560px;height:auto;display:block;fill:var(--fg)}
svg.square{max-width:480px}
svg .plot{fill:none;stroke:var(--line)}svg .same{stroke:var(--muted);stroke-dasharray:4 3}
svg .dot{stroke:#fff;stroke-width:1}svg .agree{fill:var(--ok)}svg .differ{fill:var(--error)}
svg .count{fill:#fff;font-size:10px;font-weight:600}
.scroll{overflow-x:auto}
table{border-collapse:collapse;width:100%}
th,td{text-align:left;vertical-align:top;padding:5px 6px;border-bottom:1px solid var(--line)}
th{background:var(--soft);font-size:.88em;white-space:nowrap}
td.num,th.num{text-align:right}
td{overflow-wrap:anywhere}
table.findings{font-size:.9em}
.c-sev,.c-table,.c-row,.c-outcome code,.mark{white-space:nowrap}
.c-product{min-width:8.5em}.c-trial{min-width:9.8em}
.c-kind,.c-verdict,.c-field{min-width:6.5em;overflow-wrap:normal}
.c-val{min-width:8em;max-width:16em}.c-msg{min-width:16em}.c-marks{min-width:7.5em}
th button{font:inherit;font-weight:600;border:0;background:none;padding:0;cursor:pointer;
color:inherit}
th[aria-sort=ascending] button::after{content:" ▲"}
th[aria-sort=descending] button::after{content:" ▼"}
details summary{cursor:pointer;color:#1f5fae}
dl{margin:.3em 0;display:grid;grid-template-columns:max-content 1fr;gap:2px 8px}
dt{color:var(--muted)}dd{margin:0}
.filters{display:flex;flex-wrap:wrap;gap:8px 14px;align-items:end;margin:8px 0 10px}
.filters label{display:flex;flex-direction:column;font-size:.85em;color:var(--muted)}
.filters input,.filters select{font:inherit;font-size:1rem;padding:3px 4px;min-width:8em}
#f-count{color:var(--muted);font-size:.9em}
@media (max-width:760px){
body{padding:10px 12px 40px;font-size:15px}
table.cards,table.cards tbody,table.cards tr,table.cards td{display:block;width:auto}
table.cards thead{display:none}
table.cards tr{border:1px solid var(--line);border-radius:6px;margin:0 0 10px;padding:4px 8px}
table.cards td{border:0;padding:2px 0 2px 7.2em;display:flow-root;min-width:0;max-width:none;
text-align:left;white-space:normal}
table.cards td::before{content:attr(data-label);float:left;width:8em;margin-left:-8.47em;
color:var(--muted);font-size:.85em;padding-top:.1em}
table.cards tr td:empty{display:none}
table.cards td:is(.c-sev,.c-table,.c-row,.c-kind,.c-field,.c-verdict,.c-marks){
display:inline-block;padding:2px 14px 2px 0}
table.cards td:is(.c-table,.c-row,.c-kind,.c-field,.c-verdict,.c-marks)::before{
float:none;display:inline;width:auto;margin:0 .35em 0 0}
table.cards td.c-sev::before{content:none}
}
"""

SCRIPT = """
(function(){
var table=document.getElementById('findings-table');if(!table)return;
var tbody=table.tBodies[0],rows=[].slice.call(tbody.rows),heads=table.tHead.rows[0].cells;
var box=document.getElementById('filters'),text=document.getElementById('f-text');
var selects=[].slice.call(box.querySelectorAll('select[name]'));
var sorter=document.getElementById('f-sort'),count=document.getElementById('f-count');
box.hidden=false;
function apply(){var q=text.value.trim().toLowerCase(),shown=0;
rows.forEach(function(r){var ok=!q||r.textContent.toLowerCase().indexOf(q)>=0;
selects.forEach(function(s){if(s.value&&r.getAttribute('data-'+s.name)!==s.value)ok=false;});
r.hidden=!ok;if(ok)shown++;});
count.textContent=shown+' of '+rows.length+' findings shown';}
function key(r,i){var c=r.cells[i];
return c.hasAttribute('data-sort')?c.getAttribute('data-sort'):c.textContent.trim();}
function cmp(a,b){var x=Number(a),y=Number(b);
if(a!==''&&b!==''&&!isNaN(x)&&!isNaN(y))return x-y;return a.localeCompare(b);}
function pos(r){return Number(r.getAttribute('data-pos'));}
function sortBy(i,dir){[].forEach.call(heads,function(h){h.removeAttribute('aria-sort');});
if(i<0){rows.sort(function(a,b){return pos(a)-pos(b);});}
else{heads[i].setAttribute('aria-sort',dir>0?'ascending':'descending');
rows.sort(function(a,b){return dir*cmp(key(a,i),key(b,i))||pos(a)-pos(b);});}
rows.forEach(function(r){tbody.appendChild(r);});}
[].forEach.call(heads,function(th,i){if(!th.hasAttribute('data-sortable'))return;
var b=document.createElement('button');b.type='button';b.textContent=th.textContent;
th.textContent='';th.appendChild(b);
b.addEventListener('click',function(){var dir=th.getAttribute('aria-sort')==='ascending'?-1:1;
sortBy(i,dir);sorter.value=dir>0?String(i):'';});});
sorter.addEventListener('change',function(){sortBy(sorter.value===''?-1:Number(sorter.value),1);});
text.addEventListener('input',apply);
selects.forEach(function(s){s.addEventListener('change',apply);});
apply();
})();
"""
